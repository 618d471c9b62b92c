package identity

import (
	"context"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Second factors a user may have enrolled.
const (
	FactorTOTP     = "totp"
	FactorWebAuthn = "webauthn"
	FactorRecovery = "recovery"
)

// LoginResult is the outcome of a correct password.
type LoginResult struct {
	User User
	// Factors lists the second factors the user must choose from; empty
	// when none is enrolled.
	Factors []string
	// MustEnrol is set when an org of the user requires a second factor the
	// user has not enrolled: the session may only be used to enrol one.
	MustEnrol bool
}

// NeedSecondFactor reports whether the sign-in must continue with a
// second factor (or its enrolment) before the session is active.
func (r LoginResult) NeedSecondFactor() bool { return len(r.Factors) > 0 || r.MustEnrol }

var errBadLogin = apperr.E(apperr.Unauthenticated, "wrong user name or password")

// dummyHash is checked when the user does not exist, so that the response
// takes as long as for a wrong password.
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2jsX3JFM3f6Y4L4LRr2Gx0m9xu8Q5V1pZrQmJ5O1m0Q"

// PasswordLogin checks a user name and password, after the throttle. It
// audits failures; the caller reports success with LoginSucceeded once all
// factors are done.
func (s *Service) PasswordLogin(ctx context.Context, username, password, remoteIP string) (LoginResult, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	if len(username) > 64 || len(password) > maxPasswordLen || username == "" {
		return LoginResult{}, errBadLogin
	}
	if err := s.checkThrottle(ctx, userKey(username), ipKey(remoteIP)); err != nil {
		s.auditLoginFailure(ctx, username, 0, "throttled")
		return LoginResult{}, err
	}
	var (
		id   int64
		hash string
	)
	err := s.db.QueryRow(ctx, "SELECT id, password_hash FROM users WHERE username = ?", username).Scan(&id, &hash)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return LoginResult{}, err
	}
	if hash == "" {
		checkPassword(dummyHash, password)
		reason := "unknown user"
		if id != 0 {
			reason = "user has no password"
		}
		return LoginResult{}, s.loginFailed(ctx, username, id, remoteIP, reason)
	}
	ok, rehash := checkPassword(hash, password)
	if !ok {
		return LoginResult{}, s.loginFailed(ctx, username, id, remoteIP, "wrong password")
	}
	u, err := s.User(ctx, id)
	if err != nil {
		return LoginResult{}, err
	}
	if u.Disabled {
		s.auditLoginFailure(ctx, username, id, "account disabled")
		return LoginResult{}, apperr.E(apperr.Unauthenticated, "this account is disabled")
	}
	if u.Kind == KindService {
		s.auditLoginFailure(ctx, username, id, "service account")
		return LoginResult{}, errBadLogin
	}
	if rehash {
		if h, err := hashPassword(s.rand, password); err == nil {
			_, _ = s.db.Exec(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", h, id)
		}
	}
	return s.secondFactorsFor(ctx, u)
}

// secondFactorsFor works out what a user with a proven first factor must
// still do.
func (s *Service) secondFactorsFor(ctx context.Context, u User) (LoginResult, error) {
	res := LoginResult{User: u}
	st, err := s.MFAStatus(ctx, u.ID)
	if err != nil {
		return res, err
	}
	if st.TOTP {
		res.Factors = append(res.Factors, FactorTOTP)
	}
	if st.WebAuthn > 0 {
		res.Factors = append(res.Factors, FactorWebAuthn)
	}
	if st.Enrolled() && st.RecoveryLeft > 0 {
		res.Factors = append(res.Factors, FactorRecovery)
	}
	if !st.Enrolled() {
		req, err := s.RequiresMFA(ctx, u.ID)
		if err != nil {
			return res, err
		}
		res.MustEnrol = req
	}
	return res, nil
}

// SecondFactorsFor reports what a user authenticated by other means (an
// upstream identity provider) must still present.
func (s *Service) SecondFactorsFor(ctx context.Context, u User) (LoginResult, error) {
	return s.secondFactorsFor(ctx, u)
}

func (s *Service) loginFailed(ctx context.Context, username string, id int64, remoteIP, reason string) error {
	if err := s.recordFailure(ctx, username, remoteIP); err != nil {
		s.log.ErrorContext(ctx, "record failed sign-in", "err", err)
	}
	s.auditLoginFailure(ctx, username, id, reason)
	return errBadLogin
}

func (s *Service) auditLoginFailure(ctx context.Context, username string, id int64, reason string) {
	if len(username) > 64 {
		username = username[:64]
	}
	err := s.audit.Append(ctx, audit.Record{Action: "user.login", Outcome: audit.Failure,
		Target:  audit.Target{Type: "user", ID: idString(id), Name: username},
		Details: map[string]any{"reason": reason}, ActorID: id, ActorName: username})
	if err != nil {
		s.log.ErrorContext(ctx, "audit failed sign-in", "err", err)
	}
}

// SecondFactorFailed counts and audits a wrong second factor.
func (s *Service) SecondFactorFailed(ctx context.Context, u User, remoteIP, factor string) error {
	if err := s.recordFailure(ctx, u.Username, remoteIP); err != nil {
		return err
	}
	s.auditLoginFailure(ctx, u.Username, u.ID, "wrong "+factor)
	return nil
}

// CheckSecondFactorThrottle fails while the user or address is locked out.
func (s *Service) CheckSecondFactorThrottle(ctx context.Context, u User, remoteIP string) error {
	return s.checkThrottle(ctx, userKey(u.Username), ipKey(remoteIP))
}

// LoginSucceeded clears the user's failure count and audits the sign-in
// with the methods used (amr) and the channel ("web", "api", "oidc", "idp").
func (s *Service) LoginSucceeded(ctx context.Context, u User, amr []string, via string) error {
	if err := s.clearThrottle(ctx, u.Username); err != nil {
		return err
	}
	return s.audit.Append(ctx, audit.Record{Action: "user.login", Target: userTarget(u), ActorID: u.ID, ActorName: u.Username,
		Details: map[string]any{"amr": amr, "via": via}})
}

// MFAStatus is what second factors a user has.
type MFAStatus struct {
	TOTP         bool
	WebAuthn     int
	RecoveryLeft int
}

// Enrolled reports whether the user has a second factor (recovery codes
// alone do not count).
func (m MFAStatus) Enrolled() bool { return m.TOTP || m.WebAuthn > 0 }

// MFAStatus returns a user's enrolled second factors.
func (s *Service) MFAStatus(ctx context.Context, userID int64) (MFAStatus, error) {
	return mfaStatus(ctx, s.db, userID)
}

func mfaStatus(ctx context.Context, q store.Querier, userID int64) (MFAStatus, error) {
	var (
		st    MFAStatus
		ntotp int
	)
	err := q.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM totp_secrets WHERE user_id = ? AND confirmed = TRUE),
		(SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?),
		(SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL)`, userID, userID, userID).
		Scan(&ntotp, &st.WebAuthn, &st.RecoveryLeft)
	st.TOTP = ntotp > 0
	return st, err
}

// RequiresMFA reports whether any org the user belongs to requires a
// second factor.
func (s *Service) RequiresMFA(ctx context.Context, userID int64) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM org_members m JOIN orgs o ON o.id = m.org_id
		WHERE m.user_id = ? AND o.require_mfa = TRUE`, userID).Scan(&n)
	return n > 0, err
}

func idString(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}
