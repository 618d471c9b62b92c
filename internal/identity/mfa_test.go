package identity

import (
	"bytes"
	"encoding/base32"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"

	"github.com/pquerna/otp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// mfaEnv is an identity service on a fresh database with a test clock.
type mfaEnv struct {
	ids   *Service
	clock *fakeclock.Clock
	log   *audit.Log
}

func newMFAEnv(t *testing.T, db *store.DB, publicURL string) *mfaEnv {
	t.Helper()
	// Mid-step, so that one step of skew either way stays on the same side
	// of the test's own arithmetic.
	clock := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC))
	key := bytes.Repeat([]byte{7}, 32)
	sealer, err := keyring.FromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, clock.Now)
	ids, err := New(Deps{DB: db, Audit: log, Sealer: sealer, Logger: slog.New(slog.DiscardHandler), Clock: clock.Now,
		PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return &mfaEnv{ids: ids, clock: clock, log: log}
}

// user creates a user without a password (argon2 would only slow tests).
func (e *mfaEnv) user(t *testing.T, name string) User {
	t.Helper()
	u, err := e.ids.CreateUser(t.Context(), NewUser{Username: name})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// audited returns the audit entries of an action, oldest first.
func (e *mfaEnv) audited(t *testing.T, action string) []audit.Entry {
	t.Helper()
	es, err := e.log.List(t.Context(), audit.Filter{Action: action, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(es)
	return es
}

func wantKind(t *testing.T, err error, k apperr.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want a %s error", k)
	}
	if got := apperr.KindOf(err); got != k {
		t.Fatalf("err = %v (%s), want a %s error", err, got, k)
	}
}

// RFC 6238 Appendix B: the seeds are ASCII digits, 20, 32 and 64 bytes
// long for HMAC-SHA1, -SHA256 and -SHA512; codes have 8 digits.
var rfc6238Seeds = map[otp.Algorithm]string{
	otp.AlgorithmSHA1:   "12345678901234567890",
	otp.AlgorithmSHA256: "12345678901234567890123456789012",
	otp.AlgorithmSHA512: "1234567890123456789012345678901234567890123456789012345678901234",
}

var rfc6238Vectors = []struct {
	unix int64
	alg  otp.Algorithm
	code string
}{
	{59, otp.AlgorithmSHA1, "94287082"},
	{59, otp.AlgorithmSHA256, "46119246"},
	{59, otp.AlgorithmSHA512, "90693936"},
	{1111111109, otp.AlgorithmSHA1, "07081804"},
	{1111111109, otp.AlgorithmSHA256, "68084774"},
	{1111111109, otp.AlgorithmSHA512, "25091201"},
	{1111111111, otp.AlgorithmSHA1, "14050471"},
	{1111111111, otp.AlgorithmSHA256, "67062674"},
	{1111111111, otp.AlgorithmSHA512, "99943326"},
	{1234567890, otp.AlgorithmSHA1, "89005924"},
	{1234567890, otp.AlgorithmSHA256, "91819424"},
	{1234567890, otp.AlgorithmSHA512, "93441116"},
	{2000000000, otp.AlgorithmSHA1, "69279037"},
	{2000000000, otp.AlgorithmSHA256, "90698825"},
	{2000000000, otp.AlgorithmSHA512, "38618901"},
	{20000000000, otp.AlgorithmSHA1, "65353130"},
	{20000000000, otp.AlgorithmSHA256, "77737706"},
	{20000000000, otp.AlgorithmSHA512, "47863826"},
}

func TestTOTPCode_RFC6238Vectors(t *testing.T) {
	for _, v := range rfc6238Vectors {
		t.Run(v.alg.String()+"/"+time.Unix(v.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
			secret := base32.StdEncoding.EncodeToString([]byte(rfc6238Seeds[v.alg]))
			got, err := totpCode(secret, v.unix/totpPeriod, v.alg, otp.DigitsEight)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.code {
				t.Errorf("code = %s, want %s", got, v.code)
			}
		})
	}
}

// TestMatchTOTP_RFC6238Vectors checks the code path sign-ins use: six
// digits (the last six of the RFC's eight) of HMAC-SHA1.
func TestMatchTOTP_RFC6238Vectors(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte(rfc6238Seeds[otp.AlgorithmSHA1]))
	for _, v := range rfc6238Vectors {
		if v.alg != otp.AlgorithmSHA1 {
			continue
		}
		now := time.Unix(v.unix, 0)
		step, ok := matchTOTP(secret, v.code[2:], now, 0)
		if !ok || step != v.unix/totpPeriod {
			t.Errorf("matchTOTP(%s at %d) = %d, %v; want step %d", v.code[2:], v.unix, step, ok, v.unix/totpPeriod)
		}
		if _, ok := matchTOTP(secret, v.code[2:], now, v.unix/totpPeriod); ok {
			t.Errorf("matchTOTP(%s at %d) accepted a step already used", v.code[2:], v.unix)
		}
		if _, ok := matchTOTP(secret, v.code, now, 0); ok {
			t.Errorf("matchTOTP accepted the 8-digit code %s", v.code)
		}
	}
}

func TestTOTP_EnrolConfirmVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, "")
		ctx := t.Context()
		u := e.user(t, "alice")

		if err := e.ids.VerifyTOTP(ctx, u.ID, "123456"); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("verify before enrolment: %v", err)
		}
		en, err := e.ids.BeginTOTP(ctx, u.ID, "Rampart (test)")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(en.URI, "otpauth://totp/") || !strings.Contains(en.URI, "secret="+en.Secret) {
			t.Errorf("URI = %q, want an otpauth://totp/ URI with the secret", en.URI)
		}
		if !bytes.HasPrefix(en.QRCode, []byte("\x89PNG")) {
			t.Errorf("QR code is not a PNG image")
		}
		code := func(offset time.Duration) string {
			c, err := totpCode(en.Secret, e.clock.Now().Add(offset).Unix()/totpPeriod, otp.AlgorithmSHA1, totpDigits)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// An unconfirmed seed signs nobody in.
		if err := e.ids.VerifyTOTP(ctx, u.ID, code(0)); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("verify before confirmation: %v", err)
		}
		wantKind(t, func() error { _, err := e.ids.ConfirmTOTP(ctx, u.ID, "000000x"); return err }(), apperr.Invalid)
		codes, err := e.ids.ConfirmTOTP(ctx, u.ID, code(0))
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != RecoveryCodeCount {
			t.Errorf("confirm returned %d recovery codes, want %d", len(codes), RecoveryCodeCount)
		}
		if got := e.audited(t, "user.mfa.totp.enrol"); len(got) != 1 || got[0].TargetName != "alice" {
			t.Errorf("audit user.mfa.totp.enrol = %+v, want one entry for alice", got)
		}

		steps := []struct {
			name    string
			advance time.Duration
			offset  time.Duration
			ok      bool
		}{
			{"code used to confirm is spent", 0, 0, false},
			{"next step's code", 30 * time.Second, 0, true},
			{"same code again (replay)", 0, 0, false},
			{"code from two steps ago", 90 * time.Second, -60 * time.Second, false},
			{"clock behind by one step", 0, -30 * time.Second, true},
			{"clock ahead by one step", 0, 30 * time.Second, true},
			{"current step after a later one was used", 0, 0, false},
			{"two steps ahead", 0, 60 * time.Second, false},
			{"garbage", 0, 0, false},
		}
		for _, s := range steps {
			e.clock.Advance(s.advance)
			c := code(s.offset)
			if s.name == "garbage" {
				c = "12a456"
			}
			err := e.ids.VerifyTOTP(ctx, u.ID, c)
			if s.ok && err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
			if !s.ok && !apperr.Is(err, apperr.Unauthenticated) {
				t.Errorf("%s: err = %v, want Unauthenticated", s.name, err)
			}
		}

		if _, err := e.ids.BeginTOTP(ctx, u.ID, "Rampart (test)"); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("second enrolment: err = %v, want Conflict", err)
		}
		if err := e.ids.RemoveTOTP(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.ids.MFAStatus(ctx, u.ID); st.TOTP {
			t.Errorf("TOTP still enrolled after removal")
		}
	}, audit.Migrations, Migrations)
}

func TestRecoveryCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, "")
		ctx := t.Context()
		u := e.user(t, "bob")

		if _, err := e.ids.RegenerateRecoveryCodes(ctx, u.ID); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("codes without a second factor: err = %v, want Invalid", err)
		}
		en, err := e.ids.BeginTOTP(ctx, u.ID, "Rampart (test)")
		if err != nil {
			t.Fatal(err)
		}
		c, _ := totpCode(en.Secret, e.clock.Now().Unix()/totpPeriod, otp.AlgorithmSHA1, totpDigits)
		codes, err := e.ids.ConfirmTOTP(ctx, u.ID, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
			t.Fatalf("codes = %q, want ten distinct codes", codes)
		}
		for i, code := range codes {
			// Users type them any which way.
			typed := code
			if i%2 == 1 {
				typed = strings.ToUpper(strings.ReplaceAll(code, "-", " "))
			}
			if err := e.ids.UseRecoveryCode(ctx, u.ID, typed); err != nil {
				t.Fatalf("code %d: %v", i, err)
			}
			if err := e.ids.UseRecoveryCode(ctx, u.ID, code); !apperr.Is(err, apperr.Unauthenticated) {
				t.Fatalf("code %d a second time: err = %v, want Unauthenticated", i, err)
			}
			st, err := e.ids.MFAStatus(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.RecoveryLeft != 9-i {
				t.Fatalf("after %d codes: %d left, want %d", i+1, st.RecoveryLeft, 9-i)
			}
		}
		if got := e.audited(t, "user.mfa.recovery.use"); len(got) != 10 || got[9].Details["left"] != float64(0) {
			t.Errorf("audit user.mfa.recovery.use: %d entries, last %v; want 10 ending with left=0", len(got), got[len(got)-1].Details)
		}

		old, err := e.ids.RegenerateRecoveryCodes(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := e.ids.RegenerateRecoveryCodes(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ids.UseRecoveryCode(ctx, u.ID, old[0]); !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("code of the replaced set: err = %v, want Unauthenticated", err)
		}
		if err := e.ids.UseRecoveryCode(ctx, u.ID, fresh[0]); err != nil {
			t.Errorf("code of the new set: %v", err)
		}
		if err := e.ids.UseRecoveryCode(ctx, u.ID, "not-a-code"); !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("malformed code: err = %v, want Unauthenticated", err)
		}
	}, audit.Migrations, Migrations)
}

func TestVerifyOneTimeCode_Throttled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, "")
		ctx := t.Context()
		u := e.user(t, "carol")
		en, err := e.ids.BeginTOTP(ctx, u.ID, "Rampart (test)")
		if err != nil {
			t.Fatal(err)
		}
		code := func() string {
			c, _ := totpCode(en.Secret, e.clock.Now().Unix()/totpPeriod, otp.AlgorithmSHA1, totpDigits)
			return c
		}
		if _, err := e.ids.ConfirmTOTP(ctx, u.ID, code()); err != nil {
			t.Fatal(err)
		}
		for i := range defaultThrottle.UserFree {
			if _, err := e.ids.VerifyOneTimeCode(ctx, u, "000000", "192.0.2.1"); !apperr.Is(err, apperr.Unauthenticated) {
				t.Fatalf("wrong code %d: err = %v, want Unauthenticated", i, err)
			}
		}
		// The next failure locks the user for a second: even the right code
		// is refused meanwhile.
		if _, err := e.ids.VerifyOneTimeCode(ctx, u, "000000", "192.0.2.1"); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("last wrong code: err = %v", err)
		}
		if _, err := e.ids.VerifyOneTimeCode(ctx, u, code(), "192.0.2.1"); !apperr.Is(err, apperr.TooManyRequests) {
			t.Fatalf("right code while locked: err = %v, want TooManyRequests", err)
		}
		e.clock.Advance(totpPeriod * time.Second)
		if _, err := e.ids.VerifyOneTimeCode(ctx, u, code(), "192.0.2.1"); err != nil {
			t.Fatalf("right code after the lock expired: %v", err)
		}
		failures := e.audited(t, "user.login")
		if len(failures) != defaultThrottle.UserFree+1 || failures[0].Outcome != audit.Failure || failures[0].Details["reason"] != "wrong totp code" {
			t.Errorf("audit user.login = %d entries (first %+v), want %d failures for wrong totp codes", len(failures), failures[0], defaultThrottle.UserFree+1)
		}
	}, audit.Migrations, Migrations)
}

// A token's cached subject follows its user's second factor at once:
// confirming TOTP makes it MFA, removing it makes it not.
func TestTokenSubject_FollowsMFA(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, "")
		ctx := t.Context()
		u := e.user(t, "alice")
		raw, _, err := e.ids.CreateToken(ctx, u.ID, NewToken{Name: "ci", Scopes: []authz.Scope{authz.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		mfa := func() bool {
			t.Helper()
			_, _, sub, err := e.ids.TokenSubject(ctx, raw, "token")
			if err != nil {
				t.Fatal(err)
			}
			return sub.MFA
		}
		if mfa() {
			t.Fatal("MFA before enrolment")
		}
		en, err := e.ids.BeginTOTP(ctx, u.ID, "Rampart (test)")
		if err != nil {
			t.Fatal(err)
		}
		code, err := totpCode(en.Secret, e.clock.Now().Unix()/totpPeriod, otp.AlgorithmSHA1, totpDigits)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.ConfirmTOTP(ctx, u.ID, code); err != nil {
			t.Fatal(err)
		}
		if !mfa() {
			t.Error("not MFA right after TOTP was confirmed")
		}
		if err := e.ids.RemoveTOTP(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if mfa() {
			t.Error("still MFA right after TOTP was removed")
		}
	}, audit.Migrations, Migrations)
}
