package realm

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Session stages: a session starts after the password and is complete
// only after the second factor.
const (
	// StageEnrol: password checked, the user has no authenticator app
	// yet and must enrol one now (MFA is required).
	StageEnrol = "enrol"
	// StageMFA: password checked, waiting for the code.
	StageMFA = "mfa"
	// StageFull: both factors checked; requests reach the application.
	StageFull = "full"
)

// touchEvery limits writes of last_seen_at to one a minute per session.
const touchEvery = time.Minute

// Session is an end user's sign-in on one gateway host: a realm user's,
// or an identity an external OpenID provider of the realm vouched for.
type Session struct {
	Stage string
	Host  string
	// User is the realm user (zero for an external sign-in).
	User User
	// Provider names the realm's external provider the user signed in
	// with ("" for realm users); Subject is their subject there, Email
	// and EmailVerified what it said.
	Provider      string
	Subject       string
	Email         string
	EmailVerified bool
	// AMR lists the methods proven so far (pwd, otp, rec; an external
	// provider's own).
	AMR        []string
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// sub is the session's sub claim: the realm user's id, or
// PROVIDER:SUBJECT for an external sign-in.
func (ses Session) sub() string {
	if ses.Provider != "" {
		return ses.Provider + ":" + ses.Subject
	}
	return ses.User.Subject()
}

// NewSession starts a session for u on host at stage and returns its
// secret (for the cookie; only its hash is stored).
func (s *Service) NewSession(ctx context.Context, u User, host, stage string) (string, error) {
	tok, err := randomToken(32)
	if err != nil {
		return "", err
	}
	now := store.Time(s.now())
	_, err = s.db.Exec(ctx, `INSERT INTO realm_sessions (id_hash, realm_id, user_id, host, stage, amr, created_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, hashToken(tok), u.RealmID, u.ID, host, stage, "pwd", now, now)
	return tok, err
}

// newExternalSession starts a complete session for an identity an
// external provider proved.
func (s *Service) newExternalSession(ctx context.Context, r Realm, host string, ses Session) (string, error) {
	tok, err := randomToken(32)
	if err != nil {
		return "", err
	}
	now := store.Time(s.now())
	_, err = s.db.Exec(ctx, `INSERT INTO realm_sessions (id_hash, realm_id, provider, subject, email, email_verified, host, stage, amr,
		created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, hashToken(tok), r.ID, ses.Provider, ses.Subject, ses.Email,
		ses.EmailVerified, host, StageFull, strings.Join(ses.AMR, " "), now, now)
	return tok, err
}

// Session returns the live session tok names on host in realm r, ending
// it when it has been idle or alive too long.
func (s *Service) Session(ctx context.Context, r Realm, tok, host string) (Session, error) {
	none := apperr.E(apperr.Unauthenticated, "sign in first")
	if tok == "" || len(tok) > 128 {
		return Session{}, none
	}
	var (
		ses    Session
		userID *int64
		amr    string
	)
	var u User
	// One query per request: the session with its realm user, if any.
	err := s.db.QueryRow(ctx, `SELECT s.user_id, s.provider, s.subject, s.email, s.email_verified, s.host, s.stage, s.amr, s.created_at,
		s.last_seen_at, COALESCE(u.email, ''), COALESCE(u.email_verified, FALSE), COALESCE(u.totp_confirmed, FALSE), u.created_at,
		u.last_login_at, u.locked_until FROM realm_sessions s LEFT JOIN realm_users u ON u.id = s.user_id
		WHERE s.id_hash = ? AND s.realm_id = ?`, hashToken(tok), r.ID).
		Scan(&userID, &ses.Provider, &ses.Subject, &ses.Email, &ses.EmailVerified, &ses.Host, &ses.Stage, &amr,
			store.TimeDest(&ses.CreatedAt), store.TimeDest(&ses.LastSeenAt), &u.Email, &u.EmailVerified, &u.TOTP,
			store.TimeDest(&u.CreatedAt), store.TimeDest(&u.LastLoginAt), store.TimeDest(&u.LockedUntil))
	ses.AMR = strings.Fields(amr)
	if apperr.Is(err, apperr.NotFound) {
		return Session{}, none
	}
	if err != nil {
		return Session{}, err
	}
	if ses.Host != host {
		return Session{}, none
	}
	now := s.now()
	idle := r.SessionIdle
	if ses.Stage != StageFull {
		idle = min(idle, 10*time.Minute) // a half-finished sign-in waits ten minutes at most
	}
	if now.Sub(ses.LastSeenAt) >= idle || now.Sub(ses.CreatedAt) >= r.SessionAbsolute {
		if _, err := s.db.Exec(ctx, "DELETE FROM realm_sessions WHERE id_hash = ?", hashToken(tok)); err != nil {
			return Session{}, err
		}
		return Session{}, apperr.E(apperr.Unauthenticated, "your session has ended; sign in again")
	}
	if userID != nil {
		u.ID, u.RealmID = *userID, r.ID
		ses.User, ses.Email, ses.EmailVerified = u, u.Email, u.EmailVerified
	}
	if now.Sub(ses.LastSeenAt) >= touchEvery {
		if _, err := s.db.Exec(ctx, "UPDATE realm_sessions SET last_seen_at = ? WHERE id_hash = ?", store.Time(now), hashToken(tok)); err != nil {
			return Session{}, err
		}
		ses.LastSeenAt = now
	}
	return ses, nil
}

// Complete finishes a sign-in after the second factor (amr: the methods
// proven, like "pwd otp"). The session gets a new secret, so a secret
// seen before the second factor is worthless; the new one is returned.
func (s *Service) Complete(ctx context.Context, tok, amr string) (string, error) {
	fresh, err := randomToken(32)
	if err != nil {
		return "", err
	}
	n, err := s.db.Exec(ctx, "UPDATE realm_sessions SET stage = ?, amr = ?, id_hash = ?, last_seen_at = ? WHERE id_hash = ? AND stage <> ?",
		StageFull, amr, hashToken(fresh), store.Time(s.now()), hashToken(tok), StageFull)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", apperr.E(apperr.Unauthenticated, "sign in first")
	}
	return fresh, nil
}

// EndSession signs out: the session is deleted (audited
// realm.user.logout when it was a complete one).
func (s *Service) EndSession(ctx context.Context, r Realm, tok, host string) error {
	ses, err := s.Session(ctx, r, tok, host)
	if err != nil {
		return nil // nothing to end
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM realm_sessions WHERE id_hash = ?", hashToken(tok)); err != nil {
			return err
		}
		target := userTarget(r, ses.User.ID, ses.Email)
		if ses.Provider != "" {
			target.ID = strconv.FormatInt(r.OrgID, 10) + "/" + ses.sub()
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.logout", OrgID: r.OrgID, ActorName: "realm:" + ses.Email,
			Target: target, Details: map[string]any{"host": host}})
	})
}

// PurgeSessions deletes sessions idle for longer than a day beyond any
// realm's limit, expired verification tokens and sign-in states.
func (s *Service) PurgeSessions(ctx context.Context) (int64, error) {
	now := s.now()
	n, err := s.db.Exec(ctx, "DELETE FROM realm_sessions WHERE last_seen_at < ?", store.Time(now.Add(-maxIdle-24*time.Hour)))
	if err != nil {
		return 0, err
	}
	for _, q := range []string{"DELETE FROM realm_tokens WHERE expires_at < ?", "DELETE FROM realm_oidc_states WHERE expires_at < ?"} {
		if _, err := s.db.Exec(ctx, q, store.Time(now)); err != nil {
			return n, err
		}
	}
	return n, nil
}
