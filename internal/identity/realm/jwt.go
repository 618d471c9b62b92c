package realm

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
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

// keyOverlap is added to TokenLifetime to decide how long a replaced key
// stays published: for tokens minted just before the rotation, clock
// skew and verifiers' caches.
const keyOverlap = 5 * time.Minute

// JWKS returns the realm's public keys: the current one and those
// replaced less than TokenLifetime + keyOverlap ago.
func (s *Service) JWKS(ctx context.Context, r Realm) (jose.JSONWebKeySet, error) {
	key, err := s.signingKey(ctx, r)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: r.KeyID, Algorithm: string(jose.ES256), Use: "sig"}}}
	rows, err := s.db.Query(ctx, "SELECT key_id, public_key FROM realm_retired_keys WHERE realm_id = ? AND retire_after > ? ORDER BY retire_after DESC",
		r.ID, store.Time(s.now()))
	if err != nil {
		return set, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kid string
			der []byte
		)
		if err := rows.Scan(&kid, &der); err != nil {
			return set, err
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return set, fmt.Errorf("retired key %s of realm %d: %w", kid, r.ID, err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set, rows.Err()
}

// RotateKey replaces the realm's signing key. The old public key stays
// in the JWKS for TokenLifetime + keyOverlap, so tokens signed with it
// keep verifying until they expire (audited realm.key.rotate).
func (s *Service) RotateKey(ctx context.Context, org identity.Org) (Realm, error) {
	r, err := s.Get(ctx, org.ID)
	if apperr.Is(err, apperr.NotFound) {
		return r, apperr.E(apperr.Invalid, "this org has no end-user realm, so no key to rotate")
	}
	if err != nil {
		return r, err
	}
	old, err := s.signingKey(ctx, r)
	if err != nil {
		return r, err
	}
	der, err := x509.MarshalPKIXPublicKey(&old.PublicKey)
	if err != nil {
		return r, err
	}
	kid, pkcs8, err := newSigningKey()
	if err != nil {
		return r, err
	}
	sealed, err := s.sealer.Seal(pkcs8, keyAAD(kid))
	if err != nil {
		return r, err
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM realm_retired_keys WHERE realm_id = ? AND retire_after <= ?", r.ID, store.Time(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO realm_retired_keys (realm_id, key_id, public_key, retire_after) VALUES (?, ?, ?, ?)",
			r.ID, r.KeyID, der, store.Time(now.Add(TokenLifetime+keyOverlap))); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, "UPDATE realms SET key_id = ?, signing_key = ?, updated_at = ? WHERE id = ? AND key_id = ?",
			kid, sealed, store.Time(now), r.ID, r.KeyID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Conflict, "the key was rotated at the same time; try again")
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.key.rotate", OrgID: org.ID,
			Target:  audit.Target{Type: "realm", ID: strconv.FormatInt(org.ID, 10), Name: org.Name},
			Details: map[string]any{"old_kid": r.KeyID, "new_kid": kid}})
	})
	s.forget(org.ID)
	s.mu.Lock()
	clear(s.minted)
	s.mu.Unlock()
	if err != nil {
		return Realm{}, err
	}
	return s.Get(ctx, org.ID)
}
