package identity

// WebAuthn: security keys and passkeys.
//
// Rampart is the relying party. Its ID is the host name of the public URL
// and the only origin it accepts is the public URL itself. Keys are
// registered with a discoverable credential preferred, so most current
// authenticators can also act as passkeys: a sign-in without a user name,
// where the key verifies its user (PIN or biometrics), counts as both
// factors at once.
//
// The state of a ceremony (its challenge, and what is needed to check the
// answer) stays on the server, in webauthn_ceremonies, under a hash of what
// binds it to one browser: the session for registration and second-factor
// sign-in, a random cookie for passkey sign-in. It can be used once and
// expires after ceremonyLifetime.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

const (
	// ceremonyLifetime bounds how long a browser may take between the
	// begin and finish steps of a ceremony.
	ceremonyLifetime = 5 * time.Minute
	// MaxWebAuthnKeys is how many security keys one user may register.
	MaxWebAuthnKeys = 20
	// MaxWebAuthnResponse caps the size of a browser's answer to a
	// ceremony.
	MaxWebAuthnResponse = 64 << 10
	// defaultKeyName names a key registered without a name.
	defaultKeyName = "Security key"
	// maxPasskeyCeremonies bounds the passkey sign-ins in progress: anyone
	// may begin one, and each is a row until it expires.
	maxPasskeyCeremonies = 10000
)

// Ceremony kinds.
const (
	ceremonyRegister = "register"
	ceremonyLogin    = "login"
	ceremonyPasskey  = "passkey"
)

// WebAuthnKey is a registered security key or passkey.
type WebAuthnKey struct {
	ID   int64
	Name string
	// Discoverable is set when the key reported a discoverable credential:
	// it can sign in without a user name, as a passkey.
	Discoverable bool
	CreatedAt    time.Time
	LastUsedAt   time.Time
}

var errWebAuthnUnavailable = apperr.E(apperr.Unavailable,
	"security keys need Rampart to be reached under a host name, not an IP address; set its public URL")

var errNoCeremony = apperr.E(apperr.Unauthenticated, "the security key request expired or was already used; try again")

// newRelyingParty configures WebAuthn for the public URL.
func newRelyingParty(publicURL string) (*webauthn.WebAuthn, error) {
	if publicURL == "" {
		return nil, errors.New("no public URL")
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return nil, fmt.Errorf("parse public URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("public URL %q is not an http(s) URL with a host", publicURL)
	}
	host := strings.ToLower(u.Hostname())
	origin := u.Scheme + "://" + host
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80") {
		origin = u.Scheme + "://" + net.JoinHostPort(host, p)
	}
	return webauthn.New(&webauthn.Config{
		RPID:                  host,
		RPDisplayName:         "Rampart",
		RPOrigins:             []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
	})
}

func (s *Service) relyingParty() (*webauthn.WebAuthn, error) {
	if s.rp == nil {
		return nil, errWebAuthnUnavailable
	}
	return s.rp, nil
}

// WebAuthnAvailable reports whether security keys can be used: the public
// URL names a host (WebAuthn refuses IP addresses).
func (s *Service) WebAuthnAvailable() bool { return s.rp != nil }

// userHandle is the WebAuthn user handle of a user: the user id, 8 bytes
// big-endian. It names no one outside this Rampart.
func userHandle(id int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(id))
}

func userIDFromHandle(h []byte) (int64, bool) {
	if len(h) != 8 {
		return 0, false
	}
	id := int64(binary.BigEndian.Uint64(h))
	return id, id > 0
}

// webauthnUser shows a user and their keys to the WebAuthn library.
type webauthnUser struct {
	u    User
	keys []storedKey
}

func (w webauthnUser) WebAuthnID() []byte   { return userHandle(w.u.ID) }
func (w webauthnUser) WebAuthnName() string { return w.u.Username }

func (w webauthnUser) WebAuthnDisplayName() string {
	if w.u.DisplayName != "" {
		return w.u.DisplayName
	}
	return w.u.Username
}

func (w webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(w.keys))
	for i, k := range w.keys {
		out[i] = k.cred
	}
	return out
}

func (w webauthnUser) key(credentialID []byte) (storedKey, bool) {
	for _, k := range w.keys {
		if bytes.Equal(k.cred.ID, credentialID) {
			return k, true
		}
	}
	return storedKey{}, false
}

var _ webauthn.User = webauthnUser{}

// storedKey is a row of webauthn_credentials.
type storedKey struct {
	WebAuthnKey
	cred webauthn.Credential
}

func (s *Service) loadKeys(ctx context.Context, q store.Querier, userID int64) ([]storedKey, error) {
	rows, err := q.Query(ctx, `SELECT id, name, credential, created_at, last_used_at FROM webauthn_credentials
		WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedKey
	for rows.Next() {
		var (
			k        storedKey
			raw      string
			lastUsed *int64
		)
		if err := rows.Scan(&k.ID, &k.Name, &raw, store.TimeDest(&k.CreatedAt), &lastUsed); err != nil {
			return nil, err
		}
		if lastUsed != nil {
			k.LastUsedAt = time.UnixMicro(*lastUsed).UTC()
		}
		if err := json.Unmarshal([]byte(raw), &k.cred); err != nil {
			return nil, fmt.Errorf("decode security key %d of user %d: %w", k.ID, userID, err)
		}
		k.Discoverable = k.cred.Extensions.RK != nil && *k.cred.Extensions.RK
		out = append(out, k)
	}
	return out, rows.Err()
}

// WebAuthnKeys lists a user's security keys and passkeys, oldest first.
func (s *Service) WebAuthnKeys(ctx context.Context, userID int64) ([]WebAuthnKey, error) {
	keys, err := s.loadKeys(ctx, s.db, userID)
	if err != nil {
		return nil, err
	}
	out := make([]WebAuthnKey, len(keys))
	for i, k := range keys {
		out[i] = k.WebAuthnKey
	}
	return out, nil
}

// ceremony is the server-side state of a WebAuthn ceremony.
type ceremony struct {
	Session webauthn.SessionData `json:"session"`
	// Name is the name the user chose for a key being registered.
	Name string `json:"name,omitempty"`
}

func ceremonyKey(kind, binding string) string { return hashSecret("webauthn:" + kind + ":" + binding) }

// putCeremony stores a ceremony's state, replacing one of the same kind
// begun earlier by the same browser.
func (s *Service) putCeremony(ctx context.Context, kind, binding string, userID int64, c ceremony) error {
	if binding == "" {
		return errors.New("webauthn ceremony without a binding")
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	now := s.now()
	if _, err := s.db.Exec(ctx, "DELETE FROM webauthn_ceremonies WHERE expires_at < ?", store.Time(now)); err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO webauthn_ceremonies (key_hash, kind, user_id, data, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key_hash) DO UPDATE SET kind = excluded.kind, user_id = excluded.user_id, data = excluded.data,
		expires_at = excluded.expires_at`,
		ceremonyKey(kind, binding), kind, nullID(userID), string(data), store.Time(now.Add(ceremonyLifetime)))
	return err
}

// takeCeremony removes and returns a ceremony's state: whoever deletes the
// row owns the challenge, so an answer is accepted at most once.
func (s *Service) takeCeremony(ctx context.Context, kind, binding string, userID int64) (ceremony, error) {
	if binding == "" {
		return ceremony{}, errNoCeremony
	}
	var (
		owner   *int64
		data    string
		expires time.Time
	)
	err := s.db.QueryRow(ctx, "DELETE FROM webauthn_ceremonies WHERE key_hash = ? RETURNING user_id, data, expires_at",
		ceremonyKey(kind, binding)).Scan(&owner, &data, store.TimeDest(&expires))
	if apperr.Is(err, apperr.NotFound) {
		return ceremony{}, errNoCeremony
	}
	if err != nil {
		return ceremony{}, err
	}
	var ownerID int64
	if owner != nil {
		ownerID = *owner
	}
	if ownerID != userID || s.now().After(expires) {
		return ceremony{}, errNoCeremony
	}
	var c ceremony
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return ceremony{}, fmt.Errorf("decode webauthn ceremony: %w", err)
	}
	return c, nil
}

// webauthnError classifies an error of the WebAuthn library about a
// browser's answer: the library's explanation goes to the logs, users get
// msg.
func webauthnError(err error, k apperr.Kind, msg string) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return apperr.Wrap(fmt.Errorf("webauthn: %s: %s (%s)", pe.Type, pe.Details, pe.DevInfo), k, msg)
	}
	return apperr.Wrap(fmt.Errorf("webauthn: %w", err), k, msg)
}

// parseAttestation reads a browser's answer to a registration ceremony
// (the PublicKeyCredential as JSON).
func parseAttestation(b []byte) (*protocol.ParsedCredentialCreationData, error) {
	if len(b) > MaxWebAuthnResponse {
		return nil, apperr.E(apperr.TooLarge, "the security key's answer is too large")
	}
	p, err := protocol.ParseCredentialCreationResponseBytes(b)
	if err != nil {
		return nil, webauthnError(err, apperr.Invalid, "the security key's answer could not be read; try again")
	}
	return p, nil
}

// parseAssertion reads a browser's answer to a sign-in ceremony.
func parseAssertion(b []byte) (*protocol.ParsedCredentialAssertionData, error) {
	if len(b) > MaxWebAuthnResponse {
		return nil, apperr.E(apperr.TooLarge, "the security key's answer is too large")
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(b)
	if err != nil {
		return nil, webauthnError(err, apperr.Unauthenticated, "the security key's answer could not be read; try again")
	}
	return p, nil
}

// BeginWebAuthnRegistration starts registering a security key for u,
// named name. binding ties the ceremony to the browser (its session). It
// returns the options for navigator.credentials.create, as JSON
// ({"publicKey": …}). Keys already registered are excluded, so one
// authenticator is not registered twice.
func (s *Service) BeginWebAuthnRegistration(ctx context.Context, u User, binding, name string) (json.RawMessage, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	if u.Kind != KindHuman {
		return nil, apperr.E(apperr.Invalid, "only people can register security keys")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = defaultKeyName
	}
	if err := validateText("name", name, 100, false); err != nil {
		return nil, err
	}
	keys, err := s.loadKeys(ctx, s.db, u.ID)
	if err != nil {
		return nil, err
	}
	if len(keys) >= MaxWebAuthnKeys {
		return nil, apperr.E(apperr.Invalid, "you have %d security keys registered, the most allowed; remove one first", len(keys))
	}
	wu := webauthnUser{u: u, keys: keys}
	exclude := webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()
	opts, sd, err := rp.BeginRegistration(wu, webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn registration: %w", err)
	}
	if err := s.putCeremony(ctx, ceremonyRegister, binding, u.ID, ceremony{Session: *sd, Name: name}); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// FinishWebAuthnRegistration checks the browser's answer to the
// registration begun with the same binding and stores the new key. Like
// the first authenticator app, a first security key comes with new
// recovery codes when the user had none left (returned to be shown once).
func (s *Service) FinishWebAuthnRegistration(ctx context.Context, u User, binding string, response []byte) (WebAuthnKey, []string, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return WebAuthnKey{}, nil, err
	}
	c, err := s.takeCeremony(ctx, ceremonyRegister, binding, u.ID)
	if err != nil {
		return WebAuthnKey{}, nil, err
	}
	parsed, err := parseAttestation(response)
	if err != nil {
		return WebAuthnKey{}, nil, err
	}
	keys, err := s.loadKeys(ctx, s.db, u.ID)
	if err != nil {
		return WebAuthnKey{}, nil, err
	}
	cred, err := rp.CreateCredential(webauthnUser{u: u, keys: keys}, c.Session, parsed)
	if err != nil {
		return WebAuthnKey{}, nil, webauthnError(err, apperr.Invalid, "the security key's answer did not verify; try again")
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return WebAuthnKey{}, nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	key := WebAuthnKey{Name: c.Name, CreatedAt: now, Discoverable: cred.Extensions.RK != nil && *cred.Extensions.RK}
	var codes []string
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		st, err := mfaStatus(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if st.WebAuthn >= MaxWebAuthnKeys {
			return apperr.E(apperr.Invalid, "you have %d security keys registered, the most allowed; remove one first", st.WebAuthn)
		}
		err = tx.QueryRow(ctx, `INSERT INTO webauthn_credentials (user_id, credential_id, name, credential, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, u.ID, cred.ID, key.Name, string(raw), store.Time(now)).Scan(&key.ID)
		if apperr.Is(err, apperr.Conflict) {
			return apperr.E(apperr.Conflict, "this security key is already registered")
		}
		if err != nil {
			return err
		}
		if st.RecoveryLeft == 0 {
			if codes, err = s.newRecoveryCodesTx(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.mfa.webauthn.register", Target: userTarget(u),
			Details: map[string]any{"key": key.Name, "key_id": key.ID, "passkey": key.Discoverable}})
	})
	if err != nil {
		return WebAuthnKey{}, nil, err
	}
	return key, codes, nil
}

// RemoveWebAuthnKey removes one of a user's security keys.
func (s *Service) RemoveWebAuthnKey(ctx context.Context, userID, keyID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		var name string
		err := tx.QueryRow(ctx, "DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ? RETURNING name", keyID, userID).Scan(&name)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "security key %d not found", keyID)
		}
		if err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.mfa.webauthn.remove", Target: userTarget(u),
			Details: map[string]any{"key": name, "key_id": keyID}})
	})
}

// BeginWebAuthnLogin starts a second-factor sign-in with a security key
// for u, whose password was right. binding ties the ceremony to the
// browser (its pending session). It returns the options for
// navigator.credentials.get, as JSON.
func (s *Service) BeginWebAuthnLogin(ctx context.Context, u User, binding, remoteIP string) (json.RawMessage, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	if err := s.CheckSecondFactorThrottle(ctx, u, remoteIP); err != nil {
		return nil, err
	}
	keys, err := s.loadKeys(ctx, s.db, u.ID)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, apperr.E(apperr.Invalid, "you have no security key registered")
	}
	// A second factor needs presence only: no PIN prompt on top of the
	// password.
	opts, sd, err := rp.BeginLogin(webauthnUser{u: u, keys: keys}, webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn login: %w", err)
	}
	if err := s.putCeremony(ctx, ceremonyLogin, binding, u.ID, ceremony{Session: *sd}); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// FinishWebAuthnLogin checks the browser's answer to the second-factor
// sign-in begun with the same binding. It passes the sign-in throttle
// first and counts and audits failures, like a wrong one-time code. It
// returns the amr value to record.
func (s *Service) FinishWebAuthnLogin(ctx context.Context, u User, binding, remoteIP string, response []byte) (string, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return "", err
	}
	if err := s.CheckSecondFactorThrottle(ctx, u, remoteIP); err != nil {
		return "", err
	}
	c, err := s.takeCeremony(ctx, ceremonyLogin, binding, u.ID)
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		if ferr := s.SecondFactorFailed(ctx, u, remoteIP, "security key"); ferr != nil {
			return "", ferr
		}
		return "", err
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return fail(err)
	}
	keys, err := s.loadKeys(ctx, s.db, u.ID)
	if err != nil {
		return "", err
	}
	wu := webauthnUser{u: u, keys: keys}
	cred, err := rp.ValidateLogin(wu, c.Session, parsed)
	if err != nil {
		return fail(webauthnError(err, apperr.Unauthenticated, "the security key was not accepted"))
	}
	if err := s.keyUsed(ctx, u, wu, cred, remoteIP); err != nil {
		return "", err
	}
	return AMRHardware, nil
}

// keyUsed records a verified assertion: it refuses a key whose signature
// counter did not advance (a sign of a cloned key) and otherwise stores
// the new counter and flags and the time of use.
func (s *Service) keyUsed(ctx context.Context, u User, wu webauthnUser, cred *webauthn.Credential, remoteIP string) error {
	k, ok := wu.key(cred.ID)
	if !ok {
		return fmt.Errorf("verified security key of user %d is not among theirs", u.ID)
	}
	if cred.Authenticator.CloneWarning {
		if err := s.recordFailure(ctx, u.Username, remoteIP); err != nil {
			return err
		}
		s.auditLoginFailure(ctx, u.Username, u.ID, fmt.Sprintf("security key %q reported signature counter %d, not above %d: it may be cloned",
			k.Name, cred.Authenticator.SignCount, k.cred.Authenticator.SignCount))
		return apperr.E(apperr.Unauthenticated, "this security key's usage counter went backwards, a sign it may have been copied; it was not accepted. Use another factor and tell your administrator")
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, "UPDATE webauthn_credentials SET credential = ?, last_used_at = ? WHERE id = ?",
		string(raw), store.Time(s.now()), k.ID)
	return err
}

// BeginPasskeyLogin starts a sign-in without a user name: the browser
// offers the discoverable credentials it has for Rampart. binding ties the
// ceremony to the browser (a random cookie). It returns the options for
// navigator.credentials.get, as JSON.
func (s *Service) BeginPasskeyLogin(ctx context.Context, binding, remoteIP string) (json.RawMessage, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	if err := s.checkThrottle(ctx, ipKey(remoteIP)); err != nil {
		return nil, err
	}
	var open int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM webauthn_ceremonies WHERE kind = ? AND expires_at >= ?",
		ceremonyPasskey, store.Time(s.now())).Scan(&open); err != nil {
		return nil, err
	}
	if open >= maxPasskeyCeremonies {
		return nil, &apperr.Error{Kind: apperr.TooManyRequests, RetryAfter: time.Minute,
			Msg: "too many passkey sign-ins are in progress; try again in a minute"}
	}
	// The key must verify its user: possession plus PIN or biometrics is
	// the whole sign-in.
	opts, sd, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("begin passkey login: %w", err)
	}
	if err := s.putCeremony(ctx, ceremonyPasskey, binding, 0, ceremony{Session: *sd}); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

// FinishPasskeyLogin checks the browser's answer to the passkey sign-in
// begun with the same binding and returns the user it proves, with the amr
// values of a complete sign-in (hardware key plus the user verification it
// performed: multi-factor). Failures are counted and audited like wrong
// passwords; the caller reports success with LoginSucceeded.
func (s *Service) FinishPasskeyLogin(ctx context.Context, binding, remoteIP string, response []byte) (User, []string, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return User{}, nil, err
	}
	if err := s.checkThrottle(ctx, ipKey(remoteIP)); err != nil {
		return User{}, nil, err
	}
	c, err := s.takeCeremony(ctx, ceremonyPasskey, binding, 0)
	if err != nil {
		return User{}, nil, err
	}
	var owner webauthnUser
	fail := func(reason string, err error) (User, []string, error) {
		if ferr := s.recordFailure(ctx, owner.u.Username, remoteIP); ferr != nil {
			return User{}, nil, ferr
		}
		s.auditLoginFailure(ctx, owner.u.Username, owner.u.ID, reason)
		return User{}, nil, err
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return fail("unreadable passkey answer", err)
	}
	lookup := func(rawID, handle []byte) (webauthn.User, error) {
		var uid int64
		err := s.db.QueryRow(ctx, "SELECT user_id FROM webauthn_credentials WHERE credential_id = ?", rawID).Scan(&uid)
		if err != nil {
			return nil, err
		}
		if hid, ok := userIDFromHandle(handle); !ok || hid != uid {
			return nil, errors.New("user handle does not match the credential's owner")
		}
		u, err := s.User(ctx, uid)
		if err != nil {
			return nil, err
		}
		keys, err := s.loadKeys(ctx, s.db, uid)
		if err != nil {
			return nil, err
		}
		owner = webauthnUser{u: u, keys: keys}
		return owner, nil
	}
	_, cred, err := rp.ValidatePasskeyLogin(lookup, c.Session, parsed)
	if err != nil {
		reason := "passkey not accepted"
		if owner.u.ID == 0 {
			reason = "unknown passkey"
		}
		return fail(reason, webauthnError(err, apperr.Unauthenticated, "this passkey was not accepted"))
	}
	u := owner.u
	if err := s.checkThrottle(ctx, userKey(u.Username)); err != nil {
		s.auditLoginFailure(ctx, u.Username, u.ID, "throttled")
		return User{}, nil, err
	}
	switch {
	case u.Disabled:
		s.auditLoginFailure(ctx, u.Username, u.ID, "account disabled")
		return User{}, nil, apperr.E(apperr.Unauthenticated, "this account is disabled")
	case u.Kind != KindHuman:
		s.auditLoginFailure(ctx, u.Username, u.ID, "service account")
		return User{}, nil, apperr.E(apperr.Unauthenticated, "this passkey was not accepted")
	}
	if err := s.keyUsed(ctx, u, owner, cred, remoteIP); err != nil {
		return User{}, nil, err
	}
	return u, []string{AMRHardware, AMRMFA}, nil
}
