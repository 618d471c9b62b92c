package identity_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
)

const (
	ipA = "192.0.2.10"
	ipB = "198.51.100.20"
)

func TestPasswordLogin(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		res, err := e.ids.PasswordLogin(ctx, "  BOB ", testPassword, ipA)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if res.User.ID != bob.ID || res.NeedSecondFactor() {
			t.Errorf("login result %+v", res)
		}
		for name, tc := range map[string]struct{ user, pw string }{
			"wrong password":   {"bob", "not the password"},
			"unknown user":     {"nobody", testPassword},
			"empty user":       {"", testPassword},
			"overlong user":    {strings.Repeat("b", 65), testPassword},
			"overlong pw":      {"bob", strings.Repeat("p", 257)},
			"password prefix":  {"bob", testPassword[:len(testPassword)-1]},
			"user name in pw":  {"bob", "bob"},
			"null in password": {"bob", testPassword + "\x00"},
		} {
			_, err := e.ids.PasswordLogin(ctx, tc.user, tc.pw, ipB)
			if apperr.KindOf(err) != apperr.Unauthenticated || apperr.Message(err) != "wrong user name or password" {
				t.Errorf("%s: err = %v", name, err)
			}
		}
		// Failures are audited, with the reason and without the password.
		fails, err := e.audit.List(ctx, audit.Filter{Action: "user.login", Outcome: audit.Failure})
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, f := range fails {
			reasons[fmt.Sprint(f.Details["reason"])]++
		}
		if reasons["wrong password"] != 4 || reasons["unknown user"] != 1 {
			t.Errorf("audited reasons %v", reasons)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM audit_log WHERE details LIKE ? OR target_name LIKE ?", "%horse%", "%horse%"); n != 0 {
			t.Error("a password reached the audit log")
		}

		// Disabled users cannot sign in, even with the right password.
		if err := e.ids.SetDisabled(ctx, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		_, err = e.ids.PasswordLogin(ctx, "bob", testPassword, ipA)
		if apperr.KindOf(err) != apperr.Unauthenticated || !strings.Contains(err.Error(), "disabled") {
			t.Errorf("disabled user: %v", err)
		}
	})
}

func TestPasswordLogin_RehashesOldParameters(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		salt := []byte("0123456789abcdef")
		key := argon2.IDKey([]byte(testPassword), salt, 1, 8*1024, 1, 32)
		b64 := base64.RawStdEncoding
		old := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
		if _, err := e.db.Exec(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", old, bob.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.PasswordLogin(ctx, "bob", "wrong password!", ipA); err == nil {
			t.Fatal("wrong password accepted")
		}
		if h := e.passwordHash(t, bob.ID); h != old {
			t.Fatalf("a failed login changed the hash to %q", h)
		}
		if _, err := e.ids.PasswordLogin(ctx, "bob", testPassword, ipA); err != nil {
			t.Fatalf("login with old-parameter hash: %v", err)
		}
		h := e.passwordHash(t, bob.ID)
		if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("hash not upgraded: %q", h)
		}
		if _, err := e.ids.PasswordLogin(ctx, "bob", testPassword, ipA); err != nil {
			t.Fatalf("login after rehash: %v", err)
		}
		if h2 := e.passwordHash(t, bob.ID); h2 != h {
			t.Error("a current hash was rehashed again")
		}
	})
}

func (e *env) passwordHash(t *testing.T, id int64) string {
	t.Helper()
	var h string
	if err := e.db.QueryRow(t.Context(), "SELECT password_hash FROM users WHERE id = ?", id).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPasswordPolicy_AppliesToUsersAndChanges(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		_, err := e.ids.CreateUser(ctx, identity.NewUser{Username: "bob", Password: "short"})
		if apperr.FieldOf(err) != "password" {
			t.Fatalf("short password: %v", err)
		}
		_, err = e.ids.CreateUser(ctx, identity.NewUser{Username: "welcome123", Password: "Welcome123"})
		if apperr.FieldOf(err) != "password" {
			t.Fatalf("common password: %v", err)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM users"); n != 0 {
			t.Fatalf("%d users created by refused requests", n)
		}
		bob := e.user(t, "bob")
		err = e.ids.ChangePassword(ctx, bob.ID, testPassword, "password123", "")
		if apperr.FieldOf(err) != "password" {
			t.Fatalf("change to a common password: %v", err)
		}
		err = e.ids.ChangePassword(ctx, bob.ID, "not the password", "a much better password", "")
		if apperr.FieldOf(err) != "current_password" {
			t.Fatalf("change with a wrong current password: %v", err)
		}
		if ent := e.lastAudit(t); ent.Action != "user.password.change" || ent.Outcome != audit.Failure {
			t.Errorf("audit entry %+v", ent)
		}
		if err := e.ids.ChangePassword(ctx, bob.ID, testPassword, "a much better password", ""); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "user.password.change" || ent.Outcome != audit.Success {
			t.Errorf("audit entry %+v", ent)
		}
		if _, err := e.ids.PasswordLogin(ctx, "bob", testPassword, ipA); err == nil {
			t.Error("the old password still works")
		}
		if _, err := e.ids.PasswordLogin(ctx, "bob", "a much better password", ipA); err != nil {
			t.Errorf("the new password: %v", err)
		}
	})
}

// fail makes n sign-in attempts with a wrong password and checks each was
// refused as wrong (not throttled).
func (e *env) fail(t *testing.T, user, ip string, n int) {
	t.Helper()
	for i := range n {
		_, err := e.ids.PasswordLogin(t.Context(), user, "not the password", ip)
		if apperr.Message(err) != "wrong user name or password" {
			t.Fatalf("attempt %d of %d: %v", i+1, n, err)
		}
	}
}

// succeed signs in with the right password as the API does: the password,
// then LoginSucceeded.
func (e *env) succeed(t *testing.T, user, ip string) {
	t.Helper()
	res, err := e.ids.PasswordLogin(t.Context(), user, testPassword, ip)
	if err != nil {
		t.Fatalf("sign in as %s from %s: %v", user, ip, err)
	}
	if err := e.ids.LoginSucceeded(t.Context(), res.User, []string{identity.AMRPassword}, "api"); err != nil {
		t.Fatal(err)
	}
}

// throttled checks that a sign-in with the right password is refused for
// now, and that the client is told to wait want.
func (e *env) throttled(t *testing.T, user, ip string, want time.Duration) {
	t.Helper()
	_, err := e.ids.PasswordLogin(t.Context(), user, testPassword, ip)
	if apperr.KindOf(err) != apperr.TooManyRequests {
		t.Fatalf("err = %v, want too many requests", err)
	}
	if got := apperr.RetryAfterOf(err); got != want {
		t.Fatalf("retry after %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), "try again in "+want.String()) {
		t.Errorf("message %q does not say when to try again", err)
	}
}

func TestThrottle_PerUserExponentialBackoff(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.user(t, "bob")
		e.user(t, "carol")
		e.fail(t, "bob", ipA, 5) // free
		e.fail(t, "bob", ipA, 1) // the sixth locks for a second
		e.throttled(t, "bob", ipA, time.Second)
		// The lock is on the user, wherever they try from.
		e.throttled(t, "bob", ipB, time.Second)
		// Every further failure doubles the lock.
		for i, wait := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} {
			e.clock.Advance(wait / 2)
			e.fail(t, "bob", ipA, 1)
			e.throttled(t, "bob", ipA, wait)
			if i == 0 {
				e.clock.Advance(time.Second)
				e.throttled(t, "bob", ipA, time.Second)
			} else {
				e.clock.Advance(wait / 2)
			}
		}
		// ... up to 15 minutes.
		for range 12 {
			e.clock.Advance(15 * time.Minute)
			e.fail(t, "bob", ipA, 1)
		}
		e.throttled(t, "bob", ipA, 15*time.Minute)
		// Other users are not affected.
		e.succeed(t, "carol", ipB)
		// Throttled attempts are audited too.
		fails, err := e.audit.List(t.Context(), audit.Filter{Action: "user.login", Outcome: audit.Failure, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		throttled := 0
		for _, f := range fails {
			if f.Details["reason"] == "throttled" {
				throttled++
			}
		}
		if throttled != 8 {
			t.Errorf("%d throttled attempts audited, want 8", throttled)
		}
	})
}

func TestThrottle_SuccessResetsAndAnHourForgets(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.user(t, "bob")
		e.fail(t, "bob", ipA, 6)
		e.throttled(t, "bob", ipA, time.Second)
		e.clock.Advance(time.Second)
		e.succeed(t, "bob", ipA)
		// After a success the count starts again: five free failures.
		e.fail(t, "bob", ipA, 5)
		e.succeed(t, "bob", ipA)

		// Failures an hour old are forgotten.
		e.fail(t, "bob", ipA, 5)
		e.clock.Advance(time.Hour + time.Second)
		e.fail(t, "bob", ipA, 5)
		e.succeed(t, "bob", ipA)

		// ... but not failures within the hour.
		e.fail(t, "bob", ipA, 1)
		e.clock.Advance(59 * time.Minute)
		e.fail(t, "bob", ipA, 5)
		e.throttled(t, "bob", ipA, time.Second)
	})
}

func TestThrottle_PerAddress(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.user(t, "bob")
		// A spray: one wrong guess each for many user names, from one
		// address. Twenty are free, the 21st locks the address.
		for i := range 21 {
			e.fail(t, fmt.Sprint("user", i), ipA, 1)
		}
		e.throttled(t, "bob", ipA, time.Second)
		// The same user from elsewhere is fine.
		e.succeed(t, "bob", ipB)
		// A success from the address does not excuse the spray.
		e.clock.Advance(time.Second)
		e.succeed(t, "bob", ipA)
		e.fail(t, "user99", ipA, 1)
		e.throttled(t, "bob", ipA, 2*time.Second)
	})
}
