package httpapi_test

import (
	"encoding/base64"
	"hash/crc32"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity"
)

// TestAPI_BadTokens presents tokens that must not work — malformed,
// forged, revoked, expired, of a disabled user, of a deleted service
// account — on a request that would create an org: each is refused with
// 401 and nothing is created.
func TestAPI_BadTokens(t *testing.T) { eachStore(t, testBadTokens) }

func testBadTokens(t *testing.T, store apptest.Option) {
	clk := apptest.NewClock(time.Now())
	a := apptest.Start(t, store, apptest.WithClock(clk.Now))
	admin := a.Client(t, a.AdminToken(t))
	carolToken := a.CreateUser(t, admin, "carol")
	carol := a.Client(t, carolToken)
	newToken := func(name, expiresIn string) httpapi.CreatedToken {
		var ct httpapi.CreatedToken
		carol.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens",
			httpapi.CreateTokenRequest{Name: name, Scopes: []string{"org:write", "user:read"}, ExpiresIn: expiresIn}).Decode(t, &ct)
		return ct
	}

	revoked := newToken("revoked", "")
	carol.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/user/tokens/"+strconv.FormatInt(revoked.ID, 10), nil)

	expiring := newToken("expiring", "1h")
	a.Client(t, expiring.Secret).Must(http.StatusOK, "GET", httpapi.Prefix+"/user", nil)

	daveToken := a.CreateUser(t, admin, "dave")
	admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/users/dave", map[string]bool{"disabled": true})

	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/service-accounts", httpapi.CreateServiceAccountRequest{Name: "ci", Role: "maintainer"})
	var botToken httpapi.CreatedToken
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/service-accounts/acme-bot-ci/tokens",
		httpapi.CreateTokenRequest{Name: "ci", Scopes: []string{"org:write"}}).Decode(t, &botToken)
	admin.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/orgs/acme/service-accounts/acme-bot-ci", nil)

	clk.Advance(time.Hour + time.Second)

	const badToken = "invalid, expired or revoked token"
	tests := []struct {
		name, authorization, detail string
	}{
		{"garbage", "Bearer garbage", badToken},
		{"prefix only", "Bearer rpt_", badToken},
		{"truncated", "Bearer " + carolToken[:len(carolToken)-1], badToken},
		{"wrong checksum", "Bearer " + otherLastChar(carolToken), badToken},
		{"forged with a valid checksum", "Bearer " + forgeToken(strings.Repeat("A", 40)), badToken},
		{"non-ASCII", "Bearer rpt_" + strings.Repeat("é", 23), badToken},
		{"revoked", "Bearer " + revoked.Secret, badToken},
		{"expired", "Bearer " + expiring.Secret, badToken},
		{"disabled user's", "Bearer " + daveToken, badToken},
		{"deleted service account's", "Bearer " + botToken.Secret, badToken},
		{"revoked, as a Basic password", basicAuth("carol", revoked.Secret), badToken},
		{"a password as a Basic password", basicAuth("carol", apptest.UserPassword), badToken},
		// Too long to be any credential: treated as none at all.
		{"oversized", "Bearer rpt_" + strings.Repeat("A", 5000), "sign in first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.Mark(t)
			req := newRequest(t, a, "POST", httpapi.Prefix+"/orgs", "", "application/json", strings.NewReader(`{"name":"leak"}`))
			req.Header.Set("Authorization", tt.authorization)
			res := send(t, req)
			wantProblem(t, res, http.StatusUnauthorized, tt.detail, "")
			if res.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			before.Unchanged(t)
		})
	}

	// The same request works with a good token, and dave's works again once
	// he is enabled: the refusals were about the tokens.
	admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/users/dave", map[string]bool{"disabled": false})
	a.Client(t, daveToken).Must(http.StatusOK, "GET", httpapi.Prefix+"/user", nil)
	carol.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "leak"})
}

func otherLastChar(tok string) string {
	last := tok[len(tok)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return tok[:len(tok)-1] + string(repl)
}

// forgeToken builds a well-formed token nobody issued: "rpt_", the body
// and the CRC-32 of both in six base62 characters (0-9A-Za-z).
func forgeToken(body string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	s := identity.TokenPrefix + body
	n := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(s))))
	var sum []byte
	for range 6 {
		m := new(big.Int)
		n.DivMod(n, big.NewInt(62), m)
		sum = append([]byte{digits[m.Int64()]}, sum...)
	}
	return s + string(sum)
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// TestAPI_LoginReplayedTOTP signs in with a password and a TOTP code:
// a code is good once, so a replayed one is refused and no token is made.
func TestAPI_LoginReplayedTOTP(t *testing.T) { eachStore(t, testLoginReplayedTOTP) }

func testLoginReplayedTOTP(t *testing.T, store apptest.Option) {
	clk := apptest.NewClock(time.Now())
	a := apptest.Start(t, store, apptest.WithClock(clk.Now))
	ctx := t.Context()
	u, err := a.IDs.CreateUser(ctx, identity.NewUser{Username: "erin", Password: apptest.UserPassword})
	if err != nil {
		t.Fatal(err)
	}
	en, err := a.IDs.BeginTOTP(ctx, u.ID, "Rampart")
	if err != nil {
		t.Fatal(err)
	}
	code := func() string {
		t.Helper()
		c, err := totp.GenerateCode(en.Secret, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	enrolCode := code()
	if _, err := a.IDs.ConfirmTOTP(ctx, u.ID, enrolCode); err != nil {
		t.Fatal(err)
	}
	anon := a.Client(t, "")
	login := func(otp string) apptest.Response {
		return anon.Do("POST", httpapi.Prefix+"/auth/login", httpapi.LoginRequest{Username: "erin", Password: apptest.UserPassword, OTP: otp})
	}
	refused := func(t *testing.T, otp, detail, field string) {
		t.Helper()
		before := a.Mark(t)
		wantProblem(t, login(otp), http.StatusUnauthorized, detail, field)
		before.Unchanged(t)
	}
	wrong := "000000"
	if wrong == enrolCode {
		wrong = "111111"
	}

	t.Run("no code", func(t *testing.T) { refused(t, "", "this account has a second factor", "otp") })
	t.Run("the code used to enrol", func(t *testing.T) { refused(t, enrolCode, "wrong or already used code", "") })
	t.Run("a wrong code", func(t *testing.T) { refused(t, wrong, "wrong or already used code", "") })

	clk.Advance(30 * time.Second)
	fresh := code()
	var res httpapi.LoginResponse
	anon.Must(http.StatusCreated, "POST", httpapi.Prefix+"/auth/login",
		httpapi.LoginRequest{Username: "erin", Password: apptest.UserPassword, OTP: fresh}).Decode(t, &res)
	if res.Token.Secret == "" {
		t.Fatal("sign-in with a fresh code gave no token")
	}
	t.Run("the same code again", func(t *testing.T) { refused(t, fresh, "wrong or already used code", "") })
	clk.Advance(30 * time.Second)
	t.Run("the same code in the next step", func(t *testing.T) { refused(t, fresh, "wrong or already used code", "") })
}

// TestAPI_LoginThrottle fails sign-ins until the user is locked: then even
// the right password is refused with 429 and Retry-After until the lock
// ends, and each further failure doubles the lock.
func TestAPI_LoginThrottle(t *testing.T) { eachStore(t, testLoginThrottle) }

func testLoginThrottle(t *testing.T, store apptest.Option) {
	clk := apptest.NewClock(time.Now())
	a := apptest.Start(t, store, apptest.WithClock(clk.Now))
	if _, err := a.IDs.CreateUser(t.Context(), identity.NewUser{Username: "frank", Password: apptest.UserPassword}); err != nil {
		t.Fatal(err)
	}
	anon := a.Client(t, "")
	login := func(user, password string) apptest.Response {
		return anon.Do("POST", httpapi.Prefix+"/auth/login", httpapi.LoginRequest{Username: user, Password: password})
	}
	const wrongPassword = "not-the-password"
	throttled := func(t *testing.T, user, retryAfter string) {
		t.Helper()
		before := a.Mark(t)
		res := login(user, apptest.UserPassword)
		p := wantProblem(t, res, http.StatusTooManyRequests, "too many failed sign-in attempts; try again in "+retryAfter+"s", "")
		if p.Kind != "too_many_requests" {
			t.Errorf("kind = %q", p.Kind)
		}
		if got := res.Header.Get("Retry-After"); got != retryAfter {
			t.Errorf("Retry-After = %q, want %q", got, retryAfter)
		}
		before.Unchanged(t)
	}

	for range 6 {
		wantProblem(t, login("frank", wrongPassword), http.StatusUnauthorized, "wrong user name or password", "")
	}
	t.Run("locked for a second", func(t *testing.T) { throttled(t, "frank", "1") })
	clk.Advance(500 * time.Millisecond)
	t.Run("still locked", func(t *testing.T) { throttled(t, "frank", "1") })
	clk.Advance(600 * time.Millisecond)
	wantProblem(t, login("frank", wrongPassword), http.StatusUnauthorized, "wrong user name or password", "")
	t.Run("locked for two seconds after one more failure", func(t *testing.T) { throttled(t, "frank", "2") })
	clk.Advance(2*time.Second + time.Millisecond)
	anon.Must(http.StatusCreated, "POST", httpapi.Prefix+"/auth/login", httpapi.LoginRequest{Username: "frank", Password: apptest.UserPassword})
	// A success forgets the failures.
	wantProblem(t, login("frank", wrongPassword), http.StatusUnauthorized, "wrong user name or password", "")

	// Unknown users are throttled alike, so the lock tells nothing about
	// which names exist.
	for range 6 {
		wantProblem(t, login("ghost", wrongPassword), http.StatusUnauthorized, "wrong user name or password", "")
	}
	t.Run("unknown user locked", func(t *testing.T) { throttled(t, "ghost", "1") })
}
