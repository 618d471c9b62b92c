package identity

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Session states.
const (
	// SessionPending: the password was right, a second factor is still due
	// (or, with MustEnrol, must first be enrolled). It authenticates nothing.
	SessionPending = "pending"
	// SessionActive: the user is signed in.
	SessionActive = "active"
)

// pendingLifetime bounds how long a half-finished sign-in may wait for its
// second factor.
const pendingLifetime = 10 * time.Minute

// Authentication methods (RFC 8176 amr values).
const (
	AMRPassword  = "pwd"
	AMROTP       = "otp" // TOTP or a recovery code
	AMRHardware  = "hwk" // WebAuthn security key or passkey
	AMRFederated = "fed"
	AMRMFA       = "mfa"
)

// Session is a browser session.
type Session struct {
	// Raw is the cookie value; only set when the session is created or
	// rotated (the store keeps a hash).
	Raw        string
	IDHash     string
	UserID     int64
	State      string
	AMR        []string
	AuthTime   time.Time
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	CSRF       string
	RemoteIP   string
	UserAgent  string
	// Pending holds state of a sign-in in progress (WebAuthn challenge,
	// OIDC auth request) as the owning step encodes it.
	Pending string
}

// MFA reports whether the session was authenticated with a second factor.
func (s Session) MFA() bool {
	return slices.Contains(s.AMR, AMROTP) || slices.Contains(s.AMR, AMRHardware) || slices.Contains(s.AMR, AMRMFA)
}

// StartSession creates a session for a user who passed the first factor.
func (s *Service) StartSession(ctx context.Context, userID int64, state string, amr []string, remoteIP, userAgent string) (Session, error) {
	raw, err := randomString(s.rand, 43)
	if err != nil {
		return Session{}, err
	}
	csrf, err := randomString(s.rand, 32)
	if err != nil {
		return Session{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	exp := now.Add(s.sessionAbsolute)
	if state == SessionPending {
		exp = now.Add(pendingLifetime)
	}
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	sess := Session{Raw: raw, IDHash: hashSecret(raw), UserID: userID, State: state, AMR: amr, AuthTime: now,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: exp, CSRF: csrf, RemoteIP: remoteIP, UserAgent: userAgent}
	_, err = s.db.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, state, amr, auth_time, created_at, last_seen_at, expires_at,
		csrf, remote_ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.IDHash, userID, state, strings.Join(amr, " "), store.Time(now), store.Time(now), store.Time(now), store.Time(exp),
		csrf, remoteIP, userAgent)
	if err != nil {
		return Session{}, err
	}
	return sess, nil
}

const selectSession = `SELECT id_hash, user_id, state, amr, auth_time, created_at, last_seen_at, expires_at, csrf, remote_ip,
	user_agent, pending FROM sessions`

func scanSession(r interface{ Scan(...any) error }) (Session, error) {
	var (
		sess Session
		amr  string
	)
	err := r.Scan(&sess.IDHash, &sess.UserID, &sess.State, &amr, store.TimeDest(&sess.AuthTime), store.TimeDest(&sess.CreatedAt),
		store.TimeDest(&sess.LastSeenAt), store.TimeDest(&sess.ExpiresAt), &sess.CSRF, &sess.RemoteIP, &sess.UserAgent, &sess.Pending)
	sess.AMR = strings.Fields(amr)
	return sess, err
}

var errSessionExpired = apperr.E(apperr.Unauthenticated, "your session has expired; sign in again")

// Session looks up a session by its cookie value. Expired sessions (idle
// or absolute) are deleted and reported as Unauthenticated. Pending
// sessions are returned as they are; callers decide what they allow.
func (s *Service) Session(ctx context.Context, raw string) (Session, User, error) {
	if raw == "" || len(raw) > 128 {
		return Session{}, User{}, apperr.E(apperr.Unauthenticated, "no session")
	}
	sess, err := scanSession(s.db.QueryRow(ctx, selectSession+" WHERE id_hash = ?", hashSecret(raw)))
	if apperr.Is(err, apperr.NotFound) {
		return Session{}, User{}, errSessionExpired
	}
	if err != nil {
		return Session{}, User{}, err
	}
	now := s.now()
	if now.After(sess.ExpiresAt) || (sess.State == SessionActive && now.Sub(sess.LastSeenAt) > s.sessionIdle) {
		_, _ = s.db.Exec(ctx, "DELETE FROM sessions WHERE id_hash = ?", sess.IDHash)
		return Session{}, User{}, errSessionExpired
	}
	u, err := s.User(ctx, sess.UserID)
	if err != nil {
		return Session{}, User{}, err
	}
	if u.Disabled {
		return Session{}, User{}, apperr.E(apperr.Unauthenticated, "account disabled")
	}
	// Touch at most once a minute: the idle timeout needs no finer grain
	// and every request would otherwise write.
	if now.Sub(sess.LastSeenAt) > time.Minute {
		if _, err := s.db.Exec(ctx, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", store.Time(now), sess.IDHash); err != nil {
			return Session{}, User{}, err
		}
		sess.LastSeenAt = now
	}
	sess.Raw = raw
	return sess, u, nil
}

// ActivateSession completes a sign-in: the session becomes active with the
// given extra methods, and gets a new id (the pre-authentication cookie
// must not survive a privilege change).
func (s *Service) ActivateSession(ctx context.Context, old Session, amr ...string) (Session, error) {
	raw, err := randomString(s.rand, 43)
	if err != nil {
		return Session{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	sess := old
	sess.Raw, sess.IDHash, sess.State = raw, hashSecret(raw), SessionActive
	for _, m := range amr {
		if !slices.Contains(sess.AMR, m) {
			sess.AMR = append(sess.AMR, m)
		}
	}
	sess.AuthTime, sess.LastSeenAt, sess.Pending = now, now, ""
	sess.ExpiresAt = now.Add(s.sessionAbsolute)
	n, err := s.db.Exec(ctx, `UPDATE sessions SET id_hash = ?, state = ?, amr = ?, auth_time = ?, last_seen_at = ?, expires_at = ?,
		pending = '' WHERE id_hash = ?`, sess.IDHash, SessionActive, strings.Join(sess.AMR, " "), store.Time(now), store.Time(now),
		store.Time(sess.ExpiresAt), old.IDHash)
	if err != nil {
		return Session{}, err
	}
	if n == 0 {
		return Session{}, errSessionExpired
	}
	return sess, nil
}

// AddSessionMethods records an extra authentication method on an active
// session (step-up), keeping its id.
func (s *Service) AddSessionMethods(ctx context.Context, sess Session, amr ...string) (Session, error) {
	for _, m := range amr {
		if !slices.Contains(sess.AMR, m) {
			sess.AMR = append(sess.AMR, m)
		}
	}
	_, err := s.db.Exec(ctx, "UPDATE sessions SET amr = ? WHERE id_hash = ?", strings.Join(sess.AMR, " "), sess.IDHash)
	return sess, err
}

// SetSessionPending stores in-progress sign-in state on a session.
func (s *Service) SetSessionPending(ctx context.Context, sess Session, pending string) error {
	if len(pending) > 64<<10 {
		return apperr.E(apperr.TooLarge, "sign-in state too large")
	}
	_, err := s.db.Exec(ctx, "UPDATE sessions SET pending = ? WHERE id_hash = ?", pending, sess.IDHash)
	return err
}

// EndSession deletes a session (sign-out).
func (s *Service) EndSession(ctx context.Context, sess Session) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM sessions WHERE id_hash = ?", sess.IDHash)
		if err != nil || n == 0 || sess.State != SessionActive {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", sess.UserID))
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.logout", Target: userTarget(u), ActorID: u.ID, ActorName: u.Username})
	})
}

// Sessions lists a user's active sessions, newest first.
func (s *Service) Sessions(ctx context.Context, userID int64) ([]Session, error) {
	rows, err := s.db.Query(ctx, selectSession+" WHERE user_id = ? AND state = ? AND expires_at > ? ORDER BY created_at DESC",
		userID, SessionActive, store.Time(s.now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// RevokeSession ends one of a user's sessions, named by its hash prefix.
func (s *Service) RevokeSession(ctx context.Context, userID int64, idHashPrefix string) error {
	if len(idHashPrefix) < 8 {
		return apperr.InvalidField("id", "session id too short")
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, "DELETE FROM sessions WHERE user_id = ? AND id_hash LIKE ?", userID, escapeLike(idHashPrefix)+"%")
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "session not found")
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "session.revoke", Target: userTarget(u)})
	})
}

// PurgeExpiredSessions deletes sessions past their absolute expiry.
func (s *Service) PurgeExpiredSessions(ctx context.Context) (int64, error) {
	return s.db.Exec(ctx, "DELETE FROM sessions WHERE expires_at < ?", store.Time(s.now()))
}
