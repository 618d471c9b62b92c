package realm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/realm"
)

// TestSignIn_EndToEnd walks an end user through the whole realm: the
// application asks for sign-in, they register, the mail arrives, they
// confirm, sign in, enrol TOTP and reach the application, which verifies
// the JWT against the published key set; then they sign out.
func TestSignIn_EndToEnd(t *testing.T) { eachStore(t, testSignInEndToEnd) }

func testSignInEndToEnd(t *testing.T, store apptest.Option) {
	w := newWorld(t, withStore(store))
	b := w.browser(t)
	const email = "Alice@Example.com"

	// Not signed in: browsers go to the sign-in page, API clients get 401,
	// and the backend sees neither.
	p := b.do("GET", "/orders?id=7", nil)
	if p.status != http.StatusSeeOther || p.location != realm.AuthPrefix+"signin?next=%2Forders%3Fid%3D7" {
		t.Fatalf("anonymous GET = %d to %q, want 303 to the sign-in page", p.status, p.location)
	}
	api := b.do("GET", "/orders", nil, "Accept", "application/json")
	if api.status != http.StatusUnauthorized || !strings.Contains(api.header.Get("Content-Type"), "problem+json") {
		t.Errorf("anonymous API call = %d %s, want 401 problem details", api.status, api.header.Get("Content-Type"))
	}
	if csp := b.do("GET", realm.AuthPrefix+"signin", nil).header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
		strings.Contains(csp, "unsafe-inline") {
		t.Errorf("sign-in page CSP = %q, want a strict policy", csp)
	}

	// Register: the mail arrives at the sink.
	p = b.submit(realm.AuthPrefix+"register", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Check your inbox") {
		t.Fatalf("register = %d: %s", p.status, p.body)
	}
	m := w.sink.Next(t, 10*time.Second)
	if diff := cmp.Diff([]string{"alice@example.com"}, m.To); diff != "" {
		t.Errorf("mail recipients (-want +got):\n%s", diff)
	}
	if got := m.Header.Get("From"); got != `"Shop" <noreply@shop.test>` {
		t.Errorf("mail From = %q", got)
	}
	if subj := m.Header.Get("Subject"); !strings.Contains(subj, "Confirm your e-mail address for Shop customers") {
		t.Errorf("mail Subject = %q", subj)
	}
	link := linkRE.FindString(m.Body)
	if link == "" || !strings.HasPrefix(link, w.gw+realm.AuthPrefix+"verify?token=") {
		t.Fatalf("mail has no verification link on the application's host: %s", m.Body)
	}

	// Unverified: the password is right but sign-in is refused.
	p = b.signIn(email, password)
	if p.status != http.StatusForbidden || !strings.Contains(errorOf(p), "confirm your e-mail address first") {
		t.Fatalf("unverified sign-in = %d %q, want 403", p.status, errorOf(p))
	}

	// Confirm; the link works once.
	if p = b.confirm(link); p.status != http.StatusOK || !strings.Contains(p.body, "alice@example.com is confirmed") {
		t.Fatalf("confirm = %d: %s", p.status, p.body)
	}
	mark := w.a.Mark(t)
	before := w.realmState(t)
	if p = b.confirm(link); p.status != http.StatusBadRequest || !strings.Contains(errorOf(p), "already used") {
		t.Errorf("replayed verification = %d %q, want 400", p.status, errorOf(p))
	}
	mark.Unchanged(t)
	w.realmUnchanged(t, before)

	// Sign in: password, then TOTP enrolment (MFA is required).
	p = b.signIn(email, password)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, realm.AuthPrefix+"mfa") {
		t.Fatalf("sign in = %d to %q, want 303 to the second factor", p.status, p.location)
	}
	if p := b.do("GET", "/orders", nil); p.status != http.StatusSeeOther || w.backend.count() != 0 {
		t.Fatalf("after the password only: GET = %d (backend hits %d), want 303 and no request to the backend", p.status, w.backend.count())
	}
	secret, codes := b.enrol()
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes, want 10", len(codes))
	}

	// The application gets the user as a JWT, and a forged header from the
	// client is replaced.
	p = b.do("GET", "/orders?id=7", nil, gateway.UserHeader, "forged")
	if p.status != http.StatusOK {
		t.Fatalf("signed-in GET = %d: %s", p.status, p.body)
	}
	var claims realm.Claims
	if err := json.Unmarshal([]byte(p.body), &claims); err != nil {
		t.Fatal(err)
	}
	iss := w.a.URL + "/api/v1/realms/shop"
	if claims.Issuer != iss || claims.Email != "alice@example.com" || !claims.EmailVerified || claims.Subject == "" ||
		!slices.Equal(claims.AMR, []string{"pwd", "otp"}) || !slices.Equal([]string(claims.Audience), []string{w.host}) {
		t.Errorf("claims = %+v, want iss %s, the verified e-mail, amr [pwd otp] and aud %s", claims, iss, w.host)
	}
	if exp := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); exp != realm.TokenLifetime {
		t.Errorf("token lifetime = %s, want %s", exp, realm.TokenLifetime)
	}
	// The same token verifies with the key set on Rampart's API.
	var apiSet jose.JSONWebKeySet
	w.a.Client(t, "").Must(http.StatusOK, "GET", "/api/v1/realms/shop/jwks", nil).Decode(t, &apiSet)
	if _, err := verify(w.backend.lastToken(), apiSet); err != nil {
		t.Errorf("token does not verify with %s/jwks: %v", iss, err)
	}

	// Sign out ends the session: the old cookie no longer works.
	stolen := b.http.Jar.Cookies(mustURL(t, w.gw))
	if p = b.submit(realm.AuthPrefix+"signout", nil); p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out") {
		t.Fatalf("sign out = %d: %s", p.status, p.body)
	}
	hits := w.backend.count()
	if p = b.do("GET", "/orders", nil); p.status != http.StatusSeeOther {
		t.Errorf("after sign-out GET = %d, want 303 to sign in", p.status)
	}
	replay := w.browser(t)
	replay.http.Jar.SetCookies(mustURL(t, w.gw), stolen)
	if p = replay.do("GET", "/orders", nil); p.status != http.StatusSeeOther || w.backend.count() != hits {
		t.Errorf("the signed-out session's cookie = %d, want 303 and no request to the backend", p.status)
	}

	// Signing in again asks for a code; a recovery code works once.
	w.clock.Advance(31 * time.Second)
	if p = b.signIn(email, password); p.status != http.StatusSeeOther {
		t.Fatalf("second sign in = %d", p.status)
	}
	if p = b.submit(realm.AuthPrefix+"mfa", url.Values{"code": {w.code(secret)}}); p.status != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("TOTP = %d to %q, want 303 to /", p.status, p.location)
	}
	if p = b.do("GET", "/", nil); p.status != http.StatusOK {
		t.Fatalf("after TOTP: GET = %d", p.status)
	}
	other := w.browser(t)
	if p = other.signIn(email, password); p.status != http.StatusSeeOther {
		t.Fatalf("sign in on a second browser = %d", p.status)
	}
	if p = other.submit(realm.AuthPrefix+"mfa", url.Values{"code": {strings.ToUpper(codes[0])}}); p.status != http.StatusSeeOther {
		t.Fatalf("recovery code = %d: %q", p.status, errorOf(p))
	}
	if p = other.do("GET", "/", nil); p.status != http.StatusOK || !strings.Contains(p.body, `"amr":["pwd","otp","rec"]`) {
		t.Errorf("after a recovery code: GET = %d %s, want amr with rec", p.status, p.body)
	}
	third := w.browser(t)
	third.signIn(email, password)
	if p = third.submit(realm.AuthPrefix+"mfa", url.Values{"code": {codes[0]}}); p.status != http.StatusUnauthorized {
		t.Errorf("a used recovery code = %d, want 401", p.status)
	}

	// Every step is in the audit log, without a secret.
	var actions []string
	for _, e := range w.a.AuditSince(t, 0) {
		if strings.HasPrefix(e.Action, "realm.") {
			actions = append(actions, e.Action+":"+e.Outcome)
			raw, _ := json.Marshal(e)
			for _, s := range append([]string{password, secret}, codes...) {
				if strings.Contains(string(raw), s) {
					t.Errorf("audit entry %s holds a secret: %s", e.Action, raw)
				}
			}
		}
	}
	for _, want := range []string{"realm.create:success", "realm.user.register:success", "realm.user.login:denied",
		"realm.user.verify:success", "realm.user.mfa.enrol:success", "realm.user.logout:success", "realm.user.login:success",
		"realm.user.login:failure"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log lacks %s; has %v", want, actions)
		}
	}
}

// TestSignIn_Throttled locks an account after five wrong codes, even for
// the right code, until the lock ends.
func TestSignIn_Throttled(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	secret, _ := b.signUp("bob@example.com")
	w.clock.Advance(31 * time.Second)
	b2 := w.browser(t)
	if p := b2.signIn("bob@example.com", password); p.status != http.StatusSeeOther {
		t.Fatalf("sign in = %d", p.status)
	}
	for i := range 5 {
		p := b2.submit(realm.AuthPrefix+"mfa", url.Values{"code": {"000000"}})
		want := http.StatusUnauthorized
		if i == 4 {
			want = http.StatusTooManyRequests
		}
		if p.status != want {
			t.Fatalf("wrong code %d = %d %q, want %d", i+1, p.status, errorOf(p), want)
		}
	}
	p := b2.submit(realm.AuthPrefix+"mfa", url.Values{"code": {w.code(secret)}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("right code while locked = %d (Retry-After %q), want 429", p.status, p.header.Get("Retry-After"))
	}
	if p := w.browser(t).signIn("bob@example.com", password); p.status != http.StatusTooManyRequests {
		t.Errorf("password while locked = %d, want 429", p.status)
	}
	hits := w.backend.count()
	if p := b2.do("GET", "/", nil); p.status != http.StatusSeeOther || w.backend.count() != hits {
		t.Errorf("locked half-signed-in browser reached the backend: %d", p.status)
	}

	w.clock.Advance(16 * time.Minute)
	b3 := w.browser(t)
	b3.signIn("bob@example.com", password)
	if p := b3.submit(realm.AuthPrefix+"mfa", url.Values{"code": {w.code(secret)}}); p.status != http.StatusSeeOther {
		t.Fatalf("after the lock: code = %d %q", p.status, errorOf(p))
	}
	locks := 0
	for _, e := range w.a.AuditSince(t, 0) {
		if e.Action == "realm.user.lock" {
			locks++
		}
	}
	if locks != 1 {
		t.Errorf("audited %d locks, want 1", locks)
	}
}

// TestSession_Timeouts ends sessions after the realm's lifetime, and
// idle half-finished sign-ins after ten minutes.
func TestSession_Timeouts(t *testing.T) {
	w := newWorld(t)
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/realm", realm.RealmRequest{SessionIdle: "10m", SessionAbsolute: "1h"})
	b := w.browser(t)
	secret, _ := b.signUp("carol@example.com")
	for i := range 6 { // never idle for 10 minutes…
		w.clock.Advance(9 * time.Minute)
		if p := b.do("GET", "/", nil); p.status != http.StatusOK {
			t.Fatalf("after %d minutes: GET = %d, want 200", 9*(i+1), p.status)
		}
	}
	w.clock.Advance(9 * time.Minute) // …but alive for over an hour
	if p := b.do("GET", "/", nil); p.status != http.StatusSeeOther {
		t.Errorf("after the session lifetime: GET = %d, want 303", p.status)
	}

	idle := w.browser(t)
	idle.signIn("carol@example.com", password)
	if p := idle.submit(realm.AuthPrefix+"mfa", url.Values{"code": {w.code(secret)}}); p.status != http.StatusSeeOther {
		t.Fatalf("code = %d %q", p.status, errorOf(p))
	}
	w.clock.Advance(11 * time.Minute)
	if p := idle.do("GET", "/", nil); p.status != http.StatusSeeOther {
		t.Errorf("after 11 idle minutes: GET = %d, want 303", p.status)
	}

	half := w.browser(t)
	half.signIn("carol@example.com", password)
	if p := half.do("GET", realm.AuthPrefix+"mfa", nil); p.status != http.StatusOK {
		t.Fatalf("mfa page = %d", p.status)
	}
	w.clock.Advance(11 * time.Minute)
	if p := half.do("GET", realm.AuthPrefix+"mfa", nil); p.status != http.StatusSeeOther {
		t.Errorf("half-finished sign-in after 11 idle minutes = %d, want 303 back to the sign-in page", p.status)
	}
}

// TestRateLimit_PerRealmUser: the route's per-user limit counts each end
// user separately.
func TestRateLimit_PerRealmUser(t *testing.T) {
	w := newWorld(t, withRoute("rate_limit", map[string]any{"per_user": 1, "burst": 1}))
	dave, erin := w.browser(t), w.browser(t)
	dave.signUp("dave@example.com")
	erin.signUp("erin@example.com")
	if p := dave.do("GET", "/", nil); p.status != http.StatusOK {
		t.Fatalf("dave's first request = %d", p.status)
	}
	if p := dave.do("GET", "/", nil); p.status != http.StatusTooManyRequests {
		t.Errorf("dave's second request within the second = %d, want 429", p.status)
	}
	if p := erin.do("GET", "/", nil); p.status != http.StatusOK {
		t.Errorf("erin's first request = %d, want 200: the limit is per user", p.status)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// realmState lists the realm's users and counts of tokens and sessions.
func (w *world) realmState(t testing.TB) []string {
	t.Helper()
	var us []realm.UserJSON
	w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/shop/realm/users", nil).Decode(t, &us)
	var out []string
	for _, u := range us {
		out = append(out, u.Email+" verified="+boolStr(u.EmailVerified)+" totp="+boolStr(u.TOTP)+" locked="+u.LockedUntil.String())
	}
	for _, table := range []string{"realm_tokens", "realm_sessions", "realm_recovery_codes"} {
		var n int
		if err := w.a.IDs.DB().QueryRow(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, table+"="+strings.Repeat("x", n))
	}
	return out
}

func (w *world) realmUnchanged(t *testing.T, before []string) {
	t.Helper()
	if diff := cmp.Diff(before, w.realmState(t)); diff != "" {
		t.Errorf("a refused request changed the realm (-before +after):\n%s", diff)
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// auditActions returns the realm actions audited since seq.
func auditActions(t *testing.T, w *world, seq int64) []audit.Entry {
	var out []audit.Entry
	for _, e := range w.a.AuditSince(t, seq) {
		if strings.HasPrefix(e.Action, "realm.") {
			out = append(out, e)
		}
	}
	return out
}
