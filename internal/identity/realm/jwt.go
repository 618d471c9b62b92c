package realm

import (
	"context"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenLifetime is how long the JWT handed to the application is valid:
// the gateway mints a fresh one for every request, so it only has to
// outlive the request.
const TokenLifetime = 5 * time.Minute

// Claims are the claims of the JWT the application receives in
// gateway.UserHeader.
type Claims struct {
	Issuer        string           `json:"iss"`
	Subject       string           `json:"sub"`
	Audience      jwt.Audience     `json:"aud"`
	IssuedAt      *jwt.NumericDate `json:"iat"`
	NotBefore     *jwt.NumericDate `json:"nbf"`
	Expiry        *jwt.NumericDate `json:"exp"`
	Email         string           `json:"email"`
	EmailVerified bool             `json:"email_verified"`
	// AMR lists the methods the user proved: pwd and otp (and rec for a
	// recovery code) for realm users; the provider's amr for external
	// sign-ins.
	AMR []string `json:"amr"`
	// IdP names the realm's external provider the user signed in with
	// (absent for the realm's own users).
	IdP string `json:"idp,omitempty"`
}

// reuseFor is how long a minted JWT is handed out again for the same
// session and host (it stays valid TokenLifetime; applications see at
// least four minutes of validity left). The session itself is checked
// on every request.
const reuseFor = time.Minute

// maxMinted bounds the cache of minted tokens.
const maxMinted = 10000

type minted struct {
	token string
	at    time.Time
}

// token returns the JWT for a session, reusing one minted less than
// reuseFor ago for the same session secret and host.
func (s *Service) token(ctx context.Context, r Realm, ses Session, sessionKey, host string) (string, error) {
	key := sessionKey + "|" + host
	now := s.now()
	s.mu.Lock()
	m, ok := s.minted[key]
	s.mu.Unlock()
	if ok && now.Sub(m.at) < reuseFor && !now.Before(m.at) {
		return m.token, nil
	}
	tok, err := s.Mint(ctx, r, ses, host)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.minted) >= maxMinted {
		clear(s.minted)
	}
	s.minted[key] = minted{token: tok, at: now}
	s.mu.Unlock()
	return tok, nil
}

// Mint signs the JWT for a signed-in session on host (its audience).
func (s *Service) Mint(ctx context.Context, r Realm, ses Session, host string) (string, error) {
	key, err := s.signingKey(ctx, r)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: r.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := s.now()
	amr := ses.AMR
	if amr == nil {
		amr = []string{}
	}
	return jwt.Signed(signer).Claims(Claims{Issuer: s.Issuer(r.OrgName), Subject: ses.sub(), Audience: jwt.Audience{host},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
		Expiry: jwt.NewNumericDate(now.Add(TokenLifetime)), Email: ses.Email, EmailVerified: ses.EmailVerified, AMR: amr,
		IdP: ses.Provider}).Serialize()
}

// JWKS returns the realm's public keys.
func (s *Service) JWKS(ctx context.Context, r Realm) (jose.JSONWebKeySet, error) {
	key, err := s.signingKey(ctx, r)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: r.KeyID, Algorithm: string(jose.ES256), Use: "sig"}}}, nil
}
