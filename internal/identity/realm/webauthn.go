package realm

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// maxKeys bounds the security keys of one end user.
const maxKeys = 10

// relyingParty is the WebAuthn relying party of one application host:
// its name is the RP ID, its origin the only one accepted.
func relyingParty(r Realm, host, origin string) (*webauthn.WebAuthn, error) {
	return webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: r.DisplayName, RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementDiscouraged, RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification: protocol.VerificationDiscouraged,
		},
	})
}

// keyUser adapts a realm user and their keys to go-webauthn.
type keyUser struct {
	u     User
	creds []webauthn.Credential
}

func (k keyUser) WebAuthnID() []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(k.u.ID))
	return b
}
func (k keyUser) WebAuthnName() string                       { return k.u.Email }
func (k keyUser) WebAuthnDisplayName() string                { return k.u.Email }
func (k keyUser) WebAuthnCredentials() []webauthn.Credential { return k.creds }

func (s *Service) keyUser(ctx context.Context, u User) (keyUser, error) {
	rows, err := s.db.Query(ctx, "SELECT credential FROM realm_webauthn_keys WHERE user_id = ? ORDER BY id", u.ID)
	if err != nil {
		return keyUser{}, err
	}
	defer rows.Close()
	ku := keyUser{u: u}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return keyUser{}, err
		}
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return keyUser{}, fmt.Errorf("stored security key of realm user %d: %w", u.ID, err)
		}
		ku.creds = append(ku.creds, c)
	}
	return ku, rows.Err()
}

// HasKeys reports whether u registered a security key.
func (s *Service) HasKeys(ctx context.Context, u User) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM realm_webauthn_keys WHERE user_id = ?", u.ID).Scan(&n)
	return n > 0, err
}

// saveCeremony keeps a ceremony's challenge with the half-done session.
func (s *Service) saveCeremony(ctx context.Context, tok, kind string, sd *webauthn.SessionData) error {
	raw, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, "UPDATE realm_sessions SET ceremony = ? WHERE id_hash = ? AND stage <> ?", kind+" "+string(raw), hashToken(tok), StageFull)
	return err
}

// takeCeremony returns and forgets the session's ceremony of kind: a
// challenge answers once.
func (s *Service) takeCeremony(ctx context.Context, tok, kind string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	var raw string
	// Read and clear in one transaction: of two answers to one
	// challenge, one wins.
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		raw = ""
		err := tx.QueryRow(ctx, "SELECT ceremony FROM realm_sessions WHERE id_hash = ? AND stage <> ?", hashToken(tok), StageFull).Scan(&raw)
		if err != nil || raw == "" {
			return err
		}
		n, err := tx.Exec(ctx, "UPDATE realm_sessions SET ceremony = '' WHERE id_hash = ? AND ceremony = ?", hashToken(tok), raw)
		if n == 0 {
			raw = ""
		}
		return err
	})
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return sd, err
	}
	k, body, ok := strings.Cut(raw, " ")
	if err != nil || !ok || k != kind || json.Unmarshal([]byte(body), &sd) != nil {
		return sd, apperr.E(apperr.Invalid, "this security key request expired; reload the page and try again")
	}
	return sd, nil
}

// BeginKeyRegistration returns the options for navigator.credentials.create
// for a user enrolling a security key, keeping the challenge with the
// session tok.
func (s *Service) BeginKeyRegistration(ctx context.Context, r Realm, u User, tok, host, origin string) (json.RawMessage, error) {
	rp, err := relyingParty(r, host, origin)
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party for %s: %w", host, err)
	}
	ku, err := s.keyUser(ctx, u)
	if err != nil {
		return nil, err
	}
	opts, sd, err := rp.BeginRegistration(ku, webauthn.WithExclusions(webauthn.Credentials(ku.creds).CredentialDescriptors()))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn registration: %w", err)
	}
	if err := s.saveCeremony(ctx, tok, "register", sd); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// FinishKeyRegistration verifies the browser's answer, stores the key and
// returns new recovery codes (shown once).
func (s *Service) FinishKeyRegistration(ctx context.Context, r Realm, u User, tok, host, origin string, response []byte) ([]string, error) {
	if err := s.checkLock(u); err != nil {
		return nil, err
	}
	sd, err := s.takeCeremony(ctx, tok, "register")
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, keyError(err, apperr.Invalid, "the security key's answer could not be read; try again")
	}
	rp, err := relyingParty(r, host, origin)
	if err != nil {
		return nil, err
	}
	ku, err := s.keyUser(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(ku.creds) >= maxKeys {
		return nil, apperr.E(apperr.Invalid, "at most %d security keys", maxKeys)
	}
	cred, err := rp.CreateCredential(ku, sd, parsed)
	if err != nil {
		return nil, keyError(err, apperr.Invalid, "the security key's answer did not verify; try again")
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	var codes []string
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO realm_webauthn_keys (user_id, credential_id, credential, created_at) VALUES (?, ?, ?, ?)",
			u.ID, cred.ID, string(raw), store.Time(s.now()))
		if apperr.Is(err, apperr.Conflict) {
			return apperr.E(apperr.Conflict, "this security key is already registered")
		}
		if err != nil {
			return err
		}
		if codes, err = newRecoveryCodesTx(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.mfa.enrol", OrgID: r.OrgID, ActorName: "realm:" + u.Email,
			Target: userTarget(r, u.ID, u.Email), Details: map[string]any{"method": "webauthn"}})
	})
	return codes, err
}

// BeginKeyLogin returns the options for navigator.credentials.get for a
// user with security keys, keeping the challenge with the session.
func (s *Service) BeginKeyLogin(ctx context.Context, r Realm, u User, tok, host, origin string) (json.RawMessage, error) {
	rp, err := relyingParty(r, host, origin)
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party for %s: %w", host, err)
	}
	ku, err := s.keyUser(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(ku.creds) == 0 {
		return nil, apperr.E(apperr.Invalid, "no security key is registered")
	}
	opts, sd, err := rp.BeginLogin(ku, webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn login: %w", err)
	}
	if err := s.saveCeremony(ctx, tok, "login", sd); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// FinishKeyLogin verifies the browser's answer as the second factor. A
// failure counts like a wrong code (the attempt is claimed before the
// check, as for codes); a key whose counter went backwards (cloned) is
// refused.
func (s *Service) FinishKeyLogin(ctx context.Context, r Realm, u User, tok, host, origin string, response []byte) error {
	if err := s.checkLock(u); err != nil {
		return err
	}
	sd, err := s.takeCeremony(ctx, tok, "login")
	if err != nil {
		return err
	}
	// Once claimed, an attempt's bookkeeping (lock, release, reset) runs
	// to the end even if the client goes away: a claim left counted with
	// no lock would refuse every later attempt.
	ctx = context.WithoutCancel(ctx)
	n, err := s.claimAttempt(ctx, u)
	if err != nil {
		return err
	}
	err = s.finishKeyLogin(ctx, r, u, n, host, origin, sd, response)
	if err != nil && !apperr.Is(err, apperr.Unauthenticated) && !apperr.Is(err, apperr.TooManyRequests) {
		// Not a wrong answer: the attempt does not count.
		if rerr := s.releaseAttempt(ctx, u); rerr != nil {
			s.log.WarnContext(ctx, "release a realm sign-in attempt", "user", u.ID, "error", rerr)
		}
	}
	return err
}

// finishKeyLogin checks the answer to the ceremony sd as attempt n.
func (s *Service) finishKeyLogin(ctx context.Context, r Realm, u User, n int, host, origin string, sd webauthn.SessionData, response []byte) error {
	wrong := apperr.E(apperr.Unauthenticated, "the security key was not accepted")
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return s.failure(ctx, r, u, n, "security key", wrong)
	}
	rp, err := relyingParty(r, host, origin)
	if err != nil {
		return err
	}
	ku, err := s.keyUser(ctx, u)
	if err != nil {
		return err
	}
	cred, err := rp.ValidateLogin(ku, sd, parsed)
	if err != nil || cred.Authenticator.CloneWarning {
		return s.failure(ctx, r, u, n, "security key", wrong)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, "UPDATE realm_webauthn_keys SET credential = ? WHERE user_id = ? AND credential_id = ?", string(raw), u.ID, cred.ID); err != nil {
		return err
	}
	return s.succeeded(ctx, r, u, "webauthn")
}

func keyError(err error, k apperr.Kind, msg string) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return apperr.Wrap(fmt.Errorf("webauthn: %s: %s (%s)", pe.Type, pe.Details, pe.DevInfo), k, msg)
	}
	return apperr.Wrap(fmt.Errorf("webauthn: %w", err), k, msg)
}
