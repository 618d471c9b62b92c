package realm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image/png"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// Sign-in rules.
const (
	// verifyTTL is how long an e-mail verification link works.
	verifyTTL = 24 * time.Hour
	// resendGap is the least time between two verification mails to one
	// address (registering again resends).
	resendGap = time.Minute
	// maxFailures failed passwords or codes in a row lock the account
	// for lockFor.
	maxFailures = 5
	lockFor     = 15 * time.Minute
	// recoveryCodes are made at TOTP enrolment, each usable once.
	recoveryCodes = 10

	totpPeriod = 30
	totpSkew   = 1

	purposeVerify = "verify"
	purposeReset  = "reset"
	// resetTTL is how long a password reset link works.
	resetTTL = time.Hour
)

// User is an end user of a realm.
type User struct {
	ID            int64
	RealmID       int64
	Email         string
	EmailVerified bool
	TOTP          bool
	CreatedAt     time.Time
	LastLoginAt   time.Time
	LockedUntil   time.Time
	RecoveryLeft  int
}

// Subject is the user's sub claim.
func (u User) Subject() string { return strconv.FormatInt(u.ID, 10) }

const selectUser = `SELECT id, realm_id, email, email_verified, totp_confirmed, created_at, last_login_at, locked_until,
	(SELECT COUNT(*) FROM realm_recovery_codes c WHERE c.user_id = realm_users.id) FROM realm_users`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.RealmID, &u.Email, &u.EmailVerified, &u.TOTP, store.TimeDest(&u.CreatedAt),
		store.TimeDest(&u.LastLoginAt), store.TimeDest(&u.LockedUntil), &u.RecoveryLeft)
	return u, err
}

// Users lists a realm's users, by e-mail address.
func (s *Service) Users(ctx context.Context, r Realm) ([]User, error) {
	rows, err := s.db.Query(ctx, selectUser+" WHERE realm_id = ? ORDER BY email", r.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// user returns a user of the realm.
func (s *Service) user(ctx context.Context, q store.Querier, r Realm, id int64) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, selectUser+" WHERE realm_id = ? AND id = ?", r.ID, id))
	if apperr.Is(err, apperr.NotFound) {
		return u, apperr.E(apperr.NotFound, "no such user")
	}
	return u, err
}

// NormalizeEmail checks an e-mail address typed by an end user and
// returns it in the form the realm keys users on (lower case). Display
// names, comments, quoting and addresses over 254 bytes are refused.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	bad := apperr.InvalidField("email", "enter an e-mail address like name@example.com")
	if s == "" || len(s) > maxEmail {
		return "", bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.ContainsAny(s, "\"\\ ()<>,;:[]") {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !validHost(s[at+1:]) || !strings.Contains(s[at+1:], ".") {
		return "", bad
	}
	return strings.ToLower(s), nil
}

// Registration is what Register did, for the page to say (the same words
// in every case, so the page does not tell who has an account).
type Registration struct {
	// Sent is false when no mail went out because one was sent to this
	// address less than a minute ago.
	Sent bool
}

// Register signs a new end user up (or, for an address that is already
// registered but not verified, sends a new link; for a verified one, a
// notice). base is the scheme and host the link points at
// ("https://app.example.com").
//
// The password is kept with the new link, not given to the account: it
// becomes the account's password only when that link is used, with that
// password (Verify). So registering someone else's pending address again
// neither changes the password they chose nor lets the mailbox's owner
// confirm a stranger's password by clicking the newest link.
func (s *Service) Register(ctx context.Context, r Realm, base, email, password string) (Registration, error) {
	if !r.AllowSignup {
		return Registration{}, apperr.E(apperr.Forbidden, "this site does not accept new registrations")
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return Registration{}, err
	}
	if err := identity.ValidatePassword(email, password); err != nil {
		return Registration{}, err
	}
	hash, err := identity.HashPassword(password)
	if err != nil {
		return Registration{}, err
	}
	var (
		token    string
		verified bool
		created  bool
		recent   bool
		userID   int64
	)
	now := s.now()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE realm_id = ? AND email = ?", r.ID, email))
		switch {
		case apperr.Is(err, apperr.NotFound):
			if err := tx.QueryRow(ctx, `INSERT INTO realm_users (realm_id, email, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
				r.ID, email, hash, store.Time(now)).Scan(&userID); err != nil {
				return err
			}
			created = true
			if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.register", OrgID: r.OrgID, ActorName: "realm:" + email,
				Target: userTarget(r, userID, email)}); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			userID, verified = u.ID, u.EmailVerified
		}
		var last time.Time
		err = tx.QueryRow(ctx, "SELECT MAX(created_at) FROM realm_tokens WHERE user_id = ? AND purpose = ?", userID, purposeVerify).Scan(store.TimeDest(&last))
		if err != nil {
			return err
		}
		if !last.IsZero() && now.Sub(last) < resendGap {
			recent = true
			return nil
		}
		if verified {
			return nil
		}
		// The account's password is left as it is: this registration's
		// password goes with this registration's link. Earlier links
		// still work (each with its own password) until they expire or
		// the address is confirmed.
		if _, err := tx.Exec(ctx, "DELETE FROM realm_tokens WHERE user_id = ? AND purpose = ? AND expires_at <= ?",
			userID, purposeVerify, store.Time(now)); err != nil {
			return err
		}
		if token, err = randomToken(32); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO realm_tokens (token_hash, user_id, purpose, created_at, expires_at, password_hash) VALUES (?, ?, ?, ?, ?, ?)",
			hashToken(token), userID, purposeVerify, store.Time(now), store.Time(now.Add(verifyTTL)), hash)
		return err
	})
	if err != nil || recent {
		return Registration{Sent: false}, err
	}
	var msg message
	if verified {
		msg = message{To: email, Subject: "You already have an account at " + r.DisplayName,
			Body: "Someone (maybe you) tried to register " + email + " at " + r.DisplayName + ".\r\n" +
				"You already have an account: sign in at " + base + AuthPrefix + "signin\r\n" +
				"If this was not you, you can ignore this message.\r\n"}
	} else {
		link := base + AuthPrefix + "verify?token=" + token
		msg = message{To: email, Subject: "Confirm your e-mail address for " + r.DisplayName,
			Body: "Confirm your e-mail address to finish signing up at " + r.DisplayName + ":\r\n\r\n" + link + "\r\n\r\n" +
				"The link works once, for 24 hours, with the password you chose when signing up.\r\n" +
				"If you did not sign up, ignore this message.\r\n"}
	}
	if err := s.send(ctx, r, msg); err != nil {
		if created {
			// Nobody can verify an account whose link was never sent:
			// take it back so the address can register again.
			if _, derr := s.db.Exec(ctx, "DELETE FROM realm_users WHERE id = ? AND email_verified = FALSE", userID); derr != nil {
				s.log.WarnContext(ctx, "remove unverifiable realm user", "realm", r.ID, "error", derr)
			}
			if aerr := s.audit.Append(ctx, audit.Record{Action: "realm.user.register", Outcome: audit.Failure, OrgID: r.OrgID,
				ActorName: "realm:" + email, Target: userTarget(r, userID, email),
				Details: map[string]any{"reason": "verification mail not sent; registration taken back"}}); aerr != nil {
				s.log.WarnContext(ctx, "audit realm registration", "error", aerr)
			}
		}
		return Registration{}, err
	}
	return Registration{Sent: true}, nil
}

// Verify consumes an e-mail verification token: it works once, before it
// expires, and only with the password typed at the registration that
// mailed it, which then becomes the account's password. A wrong password
// leaves the token as it was, but counts against it like a wrong
// password at sign-in counts against the account: maxFailures in a row
// lock the link for lockFor (each attempt is claimed before the password
// is checked, so concurrent guesses get no more), and failures, locks
// and attempts refused while locked are audited.
func (s *Service) Verify(ctx context.Context, r Realm, token, password string) (User, error) {
	bad := apperr.E(apperr.Invalid, "this link is invalid, expired or already used; register again to get a new one")
	if len(token) == 0 || len(token) > 128 {
		return User{}, bad
	}
	var (
		userID  int64
		email   string
		expires time.Time
		hash    string
	)
	// A link mailed before passwords went with links has none of its
	// own: the account's is the one to know.
	err := s.db.QueryRow(ctx, `SELECT t.user_id, u.email, t.expires_at, COALESCE(t.password_hash, u.password_hash) FROM realm_tokens t
		JOIN realm_users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.purpose = ? AND u.realm_id = ?`,
		hashToken(token), purposeVerify, r.ID).Scan(&userID, &email, store.TimeDest(&expires), &hash)
	if apperr.Is(err, apperr.NotFound) {
		return User{}, bad
	}
	if err != nil {
		return User{}, err
	}
	if !s.now().Before(expires) {
		if _, err := s.db.Exec(ctx, "DELETE FROM realm_tokens WHERE token_hash = ?", hashToken(token)); err != nil {
			return User{}, err
		}
		return User{}, bad
	}
	link := verifyLink{hash: hashToken(token), userID: userID, email: email}
	// Once claimed, an attempt's bookkeeping (lock, release, reset) runs
	// to the end even if the client goes away: a claim left counted with
	// no lock would refuse every later attempt.
	ctx = context.WithoutCancel(ctx)
	n, err := s.claimVerifyAttempt(ctx, r, link)
	if err != nil {
		return User{}, err
	}
	if len(password) > 1024 {
		password = ""
	}
	if ok, _ := identity.CheckPassword(hash, password); !ok {
		return User{}, s.verifyFailure(ctx, r, link, n, apperr.InvalidField("password",
			"this is not the password chosen when this link was requested: type that one, or register again to get a new link"))
	}
	var u User
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		// Deleting the token is what uses it: of two confirmations with
		// one link, one wins.
		n, err := tx.Exec(ctx, "DELETE FROM realm_tokens WHERE token_hash = ? AND purpose = ?", link.hash, purposeVerify)
		if err != nil {
			return err
		}
		if n == 0 {
			return bad
		}
		if _, err := tx.Exec(ctx, "DELETE FROM realm_tokens WHERE user_id = ? AND purpose = ?", userID, purposeVerify); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE realm_users SET email_verified = TRUE, password_hash = ? WHERE id = ?", hash, userID); err != nil {
			return err
		}
		if u, err = s.user(ctx, tx, r, userID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.verify", OrgID: r.OrgID, ActorName: "realm:" + u.Email,
			Target: userTarget(r, u.ID, u.Email)})
	})
	if err != nil && !apperr.Is(err, apperr.Invalid) {
		// The right password, but the database failed: the attempt does
		// not count (a used-up link has no count left to take back).
		if _, rerr := s.db.Exec(ctx, "UPDATE realm_tokens SET failed_attempts = failed_attempts - 1 WHERE token_hash = ? AND failed_attempts > 0", link.hash); rerr != nil {
			s.log.WarnContext(ctx, "release a realm verification attempt", "user", userID, "error", rerr)
		}
	}
	return u, err
}

// verifyLink is the registration a verification attempt is made on.
type verifyLink struct {
	hash   string // of the token
	userID int64
	email  string
}

// claimVerifyAttempt is claimAttempt for a registration's link: the
// attempt is counted as failed before the password is checked, in one
// statement, and refused while the link is locked or when earlier
// attempts (failed, or still being checked) used up the maxFailures
// allowed. A right password needs no release: it uses the link up.
func (s *Service) claimVerifyAttempt(ctx context.Context, r Realm, l verifyLink) (int, error) {
	gone := apperr.E(apperr.Invalid, "this link is invalid, expired or already used; register again to get a new one")
	for range 3 {
		var n int
		err := s.db.QueryRow(ctx, `UPDATE realm_tokens SET failed_attempts = failed_attempts + 1
			WHERE token_hash = ? AND purpose = ? AND (locked_until IS NULL OR locked_until <= ?) RETURNING failed_attempts`,
			l.hash, purposeVerify, store.Time(s.now())).Scan(&n)
		if err == nil {
			if n > maxFailures {
				// The attempts before this one are still being checked
				// and will lock the link if they fail: this one is not
				// checked.
				if _, err := s.db.Exec(ctx, "UPDATE realm_tokens SET failed_attempts = failed_attempts - 1 WHERE token_hash = ? AND failed_attempts > 0", l.hash); err != nil {
					return 0, err
				}
				s.auditVerify(ctx, r, l, audit.Denied, "locked")
				return 0, tooMany(lockFor)
			}
			return n, nil
		}
		if !apperr.Is(err, apperr.NotFound) {
			return 0, err
		}
		// Locked, or used up meanwhile.
		var until time.Time
		err = s.db.QueryRow(ctx, "SELECT locked_until FROM realm_tokens WHERE token_hash = ? AND purpose = ?", l.hash, purposeVerify).Scan(store.TimeDest(&until))
		if apperr.Is(err, apperr.NotFound) {
			return 0, gone
		}
		if err != nil {
			return 0, err
		}
		if err := s.checkLock(User{LockedUntil: until}); err != nil {
			s.auditVerify(ctx, r, l, audit.Denied, "locked")
			return 0, err
		}
		// The lock ended between the two statements: claim again.
	}
	return 0, apperr.E(apperr.Unavailable, "the link is busy; try again")
}

// verifyFailure records attempt n on a link (claimed by
// claimVerifyAttempt, which counted it) as a wrong password, and locks
// the link for lockFor when it is the maxFailures-th in a row.
func (s *Service) verifyFailure(ctx context.Context, r Realm, l verifyLink, n int, err error) error {
	s.auditVerify(ctx, r, l, audit.Failure, "wrong password")
	if n < maxFailures {
		return err
	}
	return s.lock(ctx, r, "UPDATE realm_tokens SET failed_attempts = 0, locked_until = ? WHERE token_hash = ?", l.hash,
		"realm.user.verify.lock", l.userID, l.email, n)
}

// lock writes a lock of lockFor with stmt (whose arguments are the lock's
// end, then key), audits it as action for the user after n failures, and
// returns the refusal.
func (s *Service) lock(ctx context.Context, r Realm, stmt string, key any, action string, userID int64, email string, n int) error {
	if _, err := s.db.Exec(ctx, stmt, store.Time(s.now().Add(lockFor)), key); err != nil {
		return err
	}
	if err := s.audit.Append(ctx, audit.Record{Action: action, OrgID: r.OrgID, ActorName: "realm:" + email,
		Target: userTarget(r, userID, email), Details: map[string]any{"failures": n, "minutes": int(lockFor / time.Minute)}}); err != nil {
		return err
	}
	return tooMany(lockFor)
}

func (s *Service) auditVerify(ctx context.Context, r Realm, l verifyLink, outcome, reason string) {
	rec := audit.Record{Action: "realm.user.verify", Outcome: outcome, OrgID: r.OrgID, ActorName: "realm:" + l.email,
		Target: userTarget(r, l.userID, l.email), Details: map[string]any{"reason": reason}}
	if err := s.audit.Append(ctx, rec); err != nil {
		s.log.WarnContext(ctx, "audit realm verification", "error", err)
	}
}

// DeleteUser removes an end user with their sessions and factors (an
// owner's action; audited realm.user.delete).
func (s *Service) DeleteUser(ctx context.Context, r Realm, id int64) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := s.user(ctx, tx, r, id)
		if err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM realm_sessions WHERE user_id = ?", "DELETE FROM realm_tokens WHERE user_id = ?",
			"DELETE FROM realm_recovery_codes WHERE user_id = ?", "DELETE FROM realm_webauthn_keys WHERE user_id = ?",
			"DELETE FROM realm_users WHERE id = ?",
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.delete", OrgID: r.OrgID, Target: userTarget(r, u.ID, u.Email)})
	})
}

// ResetMFA removes an end user's second factors and recovery codes, ends
// their sessions and lifts a lock (an owner's action for a user who lost
// every factor; audited realm.user.mfa.reset): the next sign-in enrols
// a factor again.
func (s *Service) ResetMFA(ctx context.Context, r Realm, id int64) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := s.user(ctx, tx, r, id)
		if err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM realm_sessions WHERE user_id = ?", "DELETE FROM realm_recovery_codes WHERE user_id = ?",
			"DELETE FROM realm_webauthn_keys WHERE user_id = ?",
			"UPDATE realm_users SET totp_secret = NULL, totp_confirmed = FALSE, totp_last_step = 0, failed_logins = 0, locked_until = NULL WHERE id = ?",
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.mfa.reset", OrgID: r.OrgID, Target: userTarget(r, u.ID, u.Email)})
	})
}

// RequestReset mails a password reset link to a verified address of the
// realm (at most once a minute). Unknown and unverified addresses get
// nothing, and the caller says the same in every case.
func (s *Service) RequestReset(ctx context.Context, r Realm, base, email string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	now := s.now()
	var token string
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE realm_id = ? AND email = ?", r.ID, email))
		if apperr.Is(err, apperr.NotFound) || err == nil && !u.EmailVerified {
			return nil
		}
		if err != nil {
			return err
		}
		var last time.Time
		if err := tx.QueryRow(ctx, "SELECT MAX(created_at) FROM realm_tokens WHERE user_id = ? AND purpose = ?", u.ID, purposeReset).
			Scan(store.TimeDest(&last)); err != nil {
			return err
		}
		if !last.IsZero() && now.Sub(last) < resendGap {
			return nil
		}
		if _, err := tx.Exec(ctx, "DELETE FROM realm_tokens WHERE user_id = ? AND purpose = ?", u.ID, purposeReset); err != nil {
			return err
		}
		if token, err = randomToken(32); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO realm_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
			hashToken(token), u.ID, purposeReset, store.Time(now), store.Time(now.Add(resetTTL))); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.password.reset_requested", OrgID: r.OrgID,
			ActorName: "realm:" + email, Target: userTarget(r, u.ID, u.Email)})
	})
	if err != nil || token == "" {
		return err
	}
	return s.send(ctx, r, message{To: email, Subject: "Reset your password for " + r.DisplayName,
		Body: "Someone (maybe you) asked to reset the password of " + email + " at " + r.DisplayName + ":\r\n\r\n" +
			base + AuthPrefix + "reset?token=" + token + "\r\n\r\n" +
			"The link works once, for an hour. If you did not ask, ignore this message: your password stays as it is.\r\n"})
}

// ResetPassword uses a reset token up and sets a new password. The
// account's sessions end and a lock is lifted; the second factor is
// still asked at the next sign-in.
func (s *Service) ResetPassword(ctx context.Context, r Realm, token, password string) (User, error) {
	bad := apperr.E(apperr.Invalid, "this link is invalid, expired or already used; ask for a new one")
	if len(token) == 0 || len(token) > 128 {
		return User{}, bad
	}
	var u User
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var (
			userID  int64
			expires time.Time
		)
		err := tx.QueryRow(ctx, `SELECT t.user_id, t.expires_at FROM realm_tokens t JOIN realm_users u ON u.id = t.user_id
			WHERE t.token_hash = ? AND t.purpose = ? AND u.realm_id = ?`, hashToken(token), purposeReset, r.ID).Scan(&userID, store.TimeDest(&expires))
		if apperr.Is(err, apperr.NotFound) || err == nil && !s.now().Before(expires) {
			return bad
		}
		if err != nil {
			return err
		}
		if u, err = s.user(ctx, tx, r, userID); err != nil {
			return err
		}
		if err := identity.ValidatePassword(u.Email, password); err != nil {
			return err
		}
		hash, err := identity.HashPassword(password)
		if err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM realm_tokens WHERE user_id = ? AND purpose = 'reset'",
			"DELETE FROM realm_sessions WHERE user_id = ?",
		} {
			if _, err := tx.Exec(ctx, q, userID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE realm_users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?", hash, userID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.password.reset", OrgID: r.OrgID, ActorName: "realm:" + u.Email,
			Target: userTarget(r, u.ID, u.Email)})
	})
	return u, err
}

// dummyHash is checked against when the address is unknown, so that a
// wrong address takes as long as a wrong password.
// It is made on first use: programs that only import the package (the
// CLI) do not pay for it.
var dummyHash = sync.OnceValue(func() string {
	h, err := identity.HashPassword("not a password of anyone here")
	if err != nil {
		return "" // CheckPassword then fails fast; only timing suffers
	}
	return h
})

// Login checks an end user's e-mail address and password (the first
// factor). Unverified addresses are refused; maxFailures wrong passwords
// or codes in a row lock the account for lockFor.
func (s *Service) Login(ctx context.Context, r Realm, email, password string) (User, error) {
	wrong := apperr.E(apperr.Unauthenticated, "wrong e-mail address or password")
	email, err := NormalizeEmail(email)
	if err != nil || len(password) > 1024 {
		return User{}, wrong
	}
	var hash string
	var u User
	err = s.db.QueryRow(ctx, "SELECT id, password_hash FROM realm_users WHERE realm_id = ? AND email = ?", r.ID, email).Scan(&u.ID, &hash)
	if apperr.Is(err, apperr.NotFound) {
		identity.CheckPassword(dummyHash(), password)
		return User{}, wrong
	}
	if err != nil {
		return User{}, err
	}
	if u, err = s.user(ctx, s.db, r, u.ID); err != nil {
		return User{}, err
	}
	// Once claimed, an attempt's bookkeeping (lock, release, reset) runs
	// to the end even if the client goes away: a claim left counted with
	// no lock would refuse every later attempt.
	ctx = context.WithoutCancel(ctx)
	n, err := s.claimAttempt(ctx, u)
	if err != nil {
		if apperr.Is(err, apperr.TooManyRequests) {
			s.auditLogin(ctx, r, u, audit.Denied, "locked")
		}
		return User{}, err
	}
	if ok, _ := identity.CheckPassword(hash, password); !ok {
		return User{}, s.failure(ctx, r, u, n, "password", wrong)
	}
	// A right password is no failure, but it does not wipe out wrong
	// codes either: the count runs across both factors until a sign-in
	// completes.
	if err := s.releaseAttempt(ctx, u); err != nil {
		return User{}, err
	}
	if !u.EmailVerified {
		s.auditLogin(ctx, r, u, audit.Denied, "unverified")
		return User{}, apperr.E(apperr.Forbidden, "confirm your e-mail address first: follow the link we sent you (register again to get a new one)")
	}
	return u, nil
}

func (s *Service) checkLock(u User) error {
	if wait := u.LockedUntil.Sub(s.now()); wait > 0 {
		return &apperr.Error{Kind: apperr.TooManyRequests, RetryAfter: wait,
			Msg: fmt.Sprintf("too many failed attempts; try again in %d minutes", int(wait/time.Minute)+1)}
	}
	return nil
}

func tooMany(wait time.Duration) error {
	return &apperr.Error{Kind: apperr.TooManyRequests, RetryAfter: wait,
		Msg: fmt.Sprintf("too many failed attempts; try again in %d minutes", int(wait/time.Minute))}
}

// claimAttempt counts an attempt at a password or code of u as failed
// before it is checked, in one statement, and returns its number in the
// current run of failures. It refuses while the account is locked, and
// when earlier attempts (failed or still being checked, concurrently)
// already used up the maxFailures allowed: concurrent guesses cannot all
// be checked. The caller then settles the attempt: releaseAttempt when
// it was not a failure after all, failure when it was, succeeded when
// the sign-in is complete.
func (s *Service) claimAttempt(ctx context.Context, u User) (int, error) {
	n, claimed := 0, false
	for try := 0; try < 3; try++ {
		err := s.db.QueryRow(ctx, `UPDATE realm_users SET failed_logins = failed_logins + 1
			WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?) RETURNING failed_logins`, u.ID, store.Time(s.now())).Scan(&n)
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return 0, err
		}
		if err == nil {
			claimed = true
			break
		}
		// Locked, or gone (NotFound here).
		u.LockedUntil = time.Time{}
		if err := s.db.QueryRow(ctx, "SELECT locked_until FROM realm_users WHERE id = ?", u.ID).Scan(store.TimeDest(&u.LockedUntil)); err != nil {
			return 0, err
		}
		if err := s.checkLock(u); err != nil {
			return 0, err
		}
		// The lock ended between the two statements: claim again.
	}
	if !claimed {
		return 0, apperr.E(apperr.Unavailable, "the account is busy; try again")
	}
	if n > maxFailures {
		// The attempts before this one are still being checked and
		// will lock the account if they fail: this one is not checked.
		if err := s.releaseAttempt(ctx, u); err != nil {
			return 0, err
		}
		return 0, tooMany(lockFor)
	}
	return n, nil
}

// releaseAttempt takes back an attempt claimed by claimAttempt that
// turned out not to be a failure (or could not be checked).
func (s *Service) releaseAttempt(ctx context.Context, u User) error {
	_, err := s.db.Exec(ctx, "UPDATE realm_users SET failed_logins = failed_logins - 1 WHERE id = ? AND failed_logins > 0", u.ID)
	return err
}

// failure records attempt n (claimed by claimAttempt, which counted it)
// as a failed password or code, and locks the account for lockFor when
// it is the maxFailures-th in a row.
func (s *Service) failure(ctx context.Context, r Realm, u User, n int, factor string, err error) error {
	s.auditLogin(ctx, r, u, audit.Failure, "wrong "+factor)
	if n >= maxFailures {
		return s.lock(ctx, r, "UPDATE realm_users SET failed_logins = 0, locked_until = ? WHERE id = ?", u.ID, "realm.user.lock", u.ID, u.Email, n)
	}
	return err
}

func (s *Service) auditLogin(ctx context.Context, r Realm, u User, outcome, reason string) {
	rec := audit.Record{Action: "realm.user.login", Outcome: outcome, OrgID: r.OrgID, ActorName: "realm:" + u.Email,
		Target: userTarget(r, u.ID, u.Email)}
	if reason != "" {
		rec.Details = map[string]any{"reason": reason}
	}
	if err := s.audit.Append(ctx, rec); err != nil {
		s.log.WarnContext(ctx, "audit realm sign-in", "error", err)
	}
}

func userTarget(r Realm, id int64, email string) audit.Target {
	return audit.Target{Type: "realm_user", ID: strconv.FormatInt(r.OrgID, 10) + "/" + strconv.FormatInt(id, 10), Name: email}
}

// TOTPEnrolment is what an end user needs to add the realm to an
// authenticator app.
type TOTPEnrolment struct {
	Secret string
	URI    string
	// QRCode is a PNG of URI.
	QRCode []byte
}

func totpAAD(userID int64) string { return "realm:totp:user:" + strconv.FormatInt(userID, 10) }

// BeginTOTP makes a new, unconfirmed TOTP seed for a user without one.
func (s *Service) BeginTOTP(ctx context.Context, r Realm, u User) (TOTPEnrolment, error) {
	if u.TOTP {
		return TOTPEnrolment{}, apperr.E(apperr.Conflict, "an authenticator app is already enrolled")
	}
	// An enrolment in progress keeps its seed, so that a mistyped code
	// does not force a new scan.
	pending, _, _, err := s.loadTOTP(ctx, s.db, u.ID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	seed := make([]byte, 20)
	if pending != "" {
		if seed, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(pending); err != nil {
			return TOTPEnrolment{}, fmt.Errorf("decode pending totp seed: %w", err)
		}
	} else if _, err := io.ReadFull(rand.Reader, seed); err != nil {
		return TOTPEnrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: r.DisplayName, AccountName: u.Email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Secret: seed})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generate totp key: %w", err)
	}
	if pending == "" {
		sealed, err := s.sealer.Seal([]byte(key.Secret()), totpAAD(u.ID))
		if err != nil {
			return TOTPEnrolment{}, err
		}
		if _, err := s.db.Exec(ctx, "UPDATE realm_users SET totp_secret = ?, totp_confirmed = FALSE, totp_last_step = 0 WHERE id = ? AND totp_confirmed = FALSE",
			sealed, u.ID); err != nil {
			return TOTPEnrolment{}, err
		}
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{Secret: key.Secret(), URI: key.URL(), QRCode: buf.Bytes()}, nil
}

// ConfirmTOTP completes enrolment with a code from the app and returns
// the user's recovery codes (shown once).
func (s *Service) ConfirmTOTP(ctx context.Context, r Realm, u User, code string) ([]string, error) {
	// Once claimed, an attempt's bookkeeping (lock, release, reset) runs
	// to the end even if the client goes away: a claim left counted with
	// no lock would refuse every later attempt.
	ctx = context.WithoutCancel(ctx)
	n, err := s.claimAttempt(ctx, u)
	if err != nil {
		return nil, err
	}
	var codes []string
	var mismatch bool
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		secret, confirmed, last, err := s.loadTOTP(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if secret == "" {
			return apperr.E(apperr.Invalid, "start enrolment first")
		}
		if confirmed {
			return apperr.E(apperr.Conflict, "an authenticator app is already enrolled")
		}
		step, ok := matchTOTP(secret, code, s.now(), last)
		if !ok {
			mismatch = true
			return nil
		}
		if _, err := tx.Exec(ctx, "UPDATE realm_users SET totp_confirmed = TRUE, totp_last_step = ?, failed_logins = 0 WHERE id = ?", step, u.ID); err != nil {
			return err
		}
		if codes, err = newRecoveryCodesTx(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "realm.user.mfa.enrol", OrgID: r.OrgID, ActorName: "realm:" + u.Email,
			Target: userTarget(r, u.ID, u.Email), Details: map[string]any{"method": "totp"}})
	})
	if err == nil && mismatch {
		return nil, s.failure(ctx, r, u, n, "code", apperr.InvalidField("code", "that code does not match; check the time on your device and try the next one"))
	}
	if err != nil {
		// Not a wrong code (no enrolment started, one done already, or
		// the database failed): the attempt does not count.
		if rerr := s.releaseAttempt(ctx, u); rerr != nil {
			s.log.WarnContext(ctx, "release a realm sign-in attempt", "user", u.ID, "error", rerr)
		}
	}
	return codes, err
}

// newRecoveryCodesTx replaces a user's recovery codes with new ones and
// returns them (only their hashes are stored).
func newRecoveryCodesTx(ctx context.Context, tx *store.Tx, userID int64) ([]string, error) {
	if _, err := tx.Exec(ctx, "DELETE FROM realm_recovery_codes WHERE user_id = ?", userID); err != nil {
		return nil, err
	}
	codes := make([]string, 0, recoveryCodes)
	for range recoveryCodes {
		c, err := randomCode()
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO realm_recovery_codes (user_id, code_hash) VALUES (?, ?)", userID, hashToken(c)); err != nil {
			return nil, err
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// SecondFactor checks a TOTP code or a recovery code (used up) and
// returns the authentication method it proves: "otp" or "rec".
func (s *Service) SecondFactor(ctx context.Context, r Realm, u User, code string) (string, error) {
	// Once claimed, an attempt's bookkeeping (lock, release, reset) runs
	// to the end even if the client goes away: a claim left counted with
	// no lock would refuse every later attempt.
	ctx = context.WithoutCancel(ctx)
	n, err := s.claimAttempt(ctx, u)
	if err != nil {
		return "", err
	}
	method, err := s.secondFactor(ctx, r, u, n, code)
	if err != nil && !apperr.Is(err, apperr.Unauthenticated) && !apperr.Is(err, apperr.TooManyRequests) {
		// Not a wrong code: the attempt does not count.
		if rerr := s.releaseAttempt(ctx, u); rerr != nil {
			s.log.WarnContext(ctx, "release a realm sign-in attempt", "user", u.ID, "error", rerr)
		}
	}
	return method, err
}

// secondFactor checks code as attempt n claimed by SecondFactor.
func (s *Service) secondFactor(ctx context.Context, r Realm, u User, n int, code string) (string, error) {
	wrong := apperr.E(apperr.Unauthenticated, "wrong or already used code")
	code = strings.TrimSpace(code)
	if len(code) > 64 {
		return "", s.failure(ctx, r, u, n, "code", wrong)
	}
	if rc := normalizeRecovery(code); len(rc) == recoveryLen {
		deleted, err := s.db.Exec(ctx, "DELETE FROM realm_recovery_codes WHERE user_id = ? AND code_hash = ?", u.ID, hashToken(rc))
		if err != nil {
			return "", err
		}
		if deleted == 1 {
			return "rec", s.succeeded(ctx, r, u, "recovery code")
		}
		return "", s.failure(ctx, r, u, n, "code", wrong)
	}
	secret, confirmed, last, err := s.loadTOTP(ctx, s.db, u.ID)
	if err != nil {
		return "", err
	}
	if !confirmed {
		return "", apperr.E(apperr.Invalid, "no authenticator app is enrolled")
	}
	step, ok := matchTOTP(secret, code, s.now(), last)
	if !ok {
		return "", s.failure(ctx, r, u, n, "code", wrong)
	}
	// Compare-and-set: a code is accepted once.
	set, err := s.db.Exec(ctx, "UPDATE realm_users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, u.ID, step)
	if err != nil {
		return "", err
	}
	if set == 0 {
		return "", s.failure(ctx, r, u, n, "code", wrong)
	}
	return "otp", s.succeeded(ctx, r, u, "totp")
}

// succeeded records a completed sign-in.
func (s *Service) succeeded(ctx context.Context, r Realm, u User, method string) error {
	if _, err := s.db.Exec(ctx, "UPDATE realm_users SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?",
		store.Time(s.now()), u.ID); err != nil {
		return err
	}
	return s.audit.Append(ctx, audit.Record{Action: "realm.user.login", OrgID: r.OrgID, ActorName: "realm:" + u.Email,
		Target: userTarget(r, u.ID, u.Email), Details: map[string]any{"second_factor": method}})
}

func (s *Service) loadTOTP(ctx context.Context, q store.Querier, userID int64) (secret string, confirmed bool, last int64, err error) {
	var sealed []byte
	if err := q.QueryRow(ctx, "SELECT totp_secret, totp_confirmed, totp_last_step FROM realm_users WHERE id = ?", userID).
		Scan(&sealed, &confirmed, &last); err != nil {
		return "", false, 0, err
	}
	if sealed == nil {
		return "", false, 0, nil
	}
	pt, err := s.sealer.Open(sealed, totpAAD(userID))
	if err != nil {
		return "", false, 0, fmt.Errorf("open totp seed of realm user %d: %w", userID, err)
	}
	return string(pt), confirmed, last, nil
}

// matchTOTP finds the time step within the skew window whose code is
// code and that is later than last.
func matchTOTP(secret, code string, now time.Time, last int64) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step <= last {
			continue
		}
		want, err := totpCodeAt(secret, time.Unix(step*totpPeriod, 0))
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

const (
	recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	recoveryLen      = 10
)

// randomCode returns a recovery code: ten characters from an alphabet
// without look-alikes, shown as xxxxx-xxxxx.
func randomCode() (string, error) {
	b := make([]byte, 0, recoveryLen)
	buf := make([]byte, 1)
	for len(b) < recoveryLen {
		if _, err := io.ReadFull(rand.Reader, buf); err != nil {
			return "", err
		}
		if int(buf[0]) >= 256-256%len(recoveryAlphabet) {
			continue
		}
		b = append(b, recoveryAlphabet[int(buf[0])%len(recoveryAlphabet)])
	}
	return string(b), nil
}

// normalizeRecovery drops dashes and spaces and lowers a typed recovery
// code.
func normalizeRecovery(c string) string {
	c = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(c))
	for _, r := range c {
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return ""
		}
	}
	return c
}

// FormatRecovery shows a recovery code as xxxxx-xxxxx.
func FormatRecovery(c string) string {
	if len(c) != recoveryLen {
		return c
	}
	return c[:5] + "-" + c[5:]
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken hashes a high-entropy secret for storage and lookup.
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// totpCodeAt is the code of secret at t (tests and matchTOTP agree on the
// parameters through it).
func totpCodeAt(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}
