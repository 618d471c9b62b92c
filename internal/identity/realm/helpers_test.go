package realm_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/realm"
	"github.com/rampartsec/rampart/internal/smtptest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// password is what the test's end users register with.
const password = "correct horse battery"

// world is a running Rampart with an org "shop", its project "web", a
// realm whose mail goes to a sink, and a route on the gateway that
// requires sign-in in front of a backend that verifies the user JWT.
type world struct {
	a       *apptest.App
	clock   *apptest.Clock
	admin   *apptest.Client
	sink    *smtptest.Server
	gw      string // gateway base URL
	host    string // the route's host (the gateway URL's host name)
	backend *backend
	db      *store.DB // the app's database, opened by attemptCounted
}

// backend is the application behind the gateway: it verifies
// X-Rampart-User with go-jose against the JWKS the gateway publishes on
// the application's host, and answers with the claims.
type backend struct {
	srv  *httptest.Server
	jwks func() jose.JSONWebKeySet

	mu     sync.Mutex
	keys   jose.JSONWebKeySet
	hits   int
	tokens []string
}

func (b *backend) handler(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.hits++
	tok := r.Header.Get(gateway.UserHeader)
	b.tokens = append(b.tokens, tok)
	b.mu.Unlock()
	if tok == "" {
		http.Error(w, "no user token", http.StatusUnauthorized)
		return
	}
	// The key set is fetched again only for a key id not seen yet.
	b.mu.Lock()
	set := b.keys
	b.mu.Unlock()
	claims, err := verify(tok, set)
	if err != nil {
		set = b.jwks()
		b.mu.Lock()
		b.keys = set
		b.mu.Unlock()
		claims, err = verify(tok, set)
	}
	if err != nil {
		http.Error(w, "bad user token: "+err.Error(), http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(claims)
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

func (b *backend) lastToken() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.tokens) == 0 {
		return ""
	}
	return b.tokens[len(b.tokens)-1]
}

// verify checks a user JWT's ES256 signature against a key set.
func verify(tok string, set jose.JSONWebKeySet) (realm.Claims, error) {
	var c realm.Claims
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, err
	}
	if len(parsed.Headers) != 1 {
		return c, fmt.Errorf("want one signature")
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		return c, fmt.Errorf("no key %q in the JWKS", parsed.Headers[0].KeyID)
	}
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		return c, err
	}
	return c, nil
}

type worldOption func(*worldSetup)

type worldSetup struct {
	store apptest.Option
	spec  map[string]any
	sink  []smtptest.Option
}

func withStore(o apptest.Option) worldOption    { return func(s *worldSetup) { s.store = o } }
func withRoute(k string, v any) worldOption     { return func(s *worldSetup) { s.spec[k] = v } }
func withSink(o ...smtptest.Option) worldOption { return func(s *worldSetup) { s.sink = o } }

func newWorld(t testing.TB, opts ...worldOption) *world {
	t.Helper()
	ws := worldSetup{spec: map[string]any{}}
	for _, o := range opts {
		o(&ws)
	}
	clock := apptest.NewClock(time.Now().Truncate(time.Second))
	aopts := []apptest.Option{apptest.WithClock(clock.Now)}
	if ws.store != nil {
		aopts = append(aopts, ws.store)
	}
	a := apptest.Start(t, aopts...)
	w := &world{a: a, clock: clock, admin: a.Client(t, a.AdminToken(t)), sink: smtptest.Start(t, ws.sink...),
		gw: a.GatewayURL()}
	gwURL, err := url.Parse(w.gw)
	if err != nil {
		t.Fatal(err)
	}
	w.host = gwURL.Hostname()
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "shop", DisplayName: "Shop"})
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/shop/projects", httpapi.CreateProjectRequest{Name: "web"})
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/realm", realm.RealmRequest{DisplayName: "Shop customers",
		SMTP: realm.SMTPJSON{Host: w.sink.Host(), Port: w.sink.Port(), From: "Shop <noreply@shop.test>", TLS: realm.TLSNone}})

	w.backend = &backend{}
	w.backend.jwks = func() jose.JSONWebKeySet {
		var set jose.JSONWebKeySet
		res, err := http.Get(w.gw + realm.AuthPrefix + "jwks.json")
		if err != nil {
			return set
		}
		defer res.Body.Close()
		_ = json.NewDecoder(res.Body).Decode(&set)
		return set
	}
	w.backend.srv = httptest.NewServer(http.HandlerFunc(w.backend.handler))
	t.Cleanup(w.backend.srv.Close)
	spec := map[string]any{"host": w.host, "path": "/", "backends": []map[string]any{{"url": w.backend.srv.URL}}, "auth": "required"}
	for k, v := range ws.spec {
		spec[k] = v
	}
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/projects/web/gateway/routes/app", spec)
	return w
}

// eachStore runs fn on SQLite and, when configured, PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, store apptest.Option)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, apptest.WithStore(b.URL(t))) })
	}
}

// browser is an end user's browser: a cookie jar, no automatic
// redirects.
type browser struct {
	t    testing.TB
	w    *world
	http *http.Client
}

func (w *world) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, w: w, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

// do sends a request to the gateway.
func (b *browser) do(method, path string, form url.Values, header ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.w.gw+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(raw), location: res.Header.Get("Location")}
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	secretRE = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)
	codesRE  = regexp.MustCompile(`<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>`)
	errorRE  = regexp.MustCompile(`<p class="error" id="error" role="alert">([^<]*)</p>`)
	linkRE   = regexp.MustCompile(`http://\S+/\.rampart/auth/verify\?token=[A-Za-z0-9_-]+`)
)

// submit loads the form page at path and posts fields with its CSRF
// token.
func (b *browser) submit(path string, fields url.Values) page {
	b.t.Helper()
	p := b.do("GET", path, nil)
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("GET %s = %d without a CSRF token: %s", path, p.status, p.body)
	}
	post := url.Values{"csrf_token": {m[1]}}
	for k, v := range fields {
		post[k] = v
	}
	action := path
	if i := strings.IndexByte(action, '?'); i >= 0 {
		action = action[:i]
		if next := fieldOf(p.body, "next"); next != "" && post.Get("next") == "" {
			post.Set("next", next)
		}
	}
	return b.do("POST", action, post)
}

func fieldOf(body, name string) string {
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return htmlUnescape(m[1])
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func errorOf(p page) string {
	m := errorRE.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return htmlUnescape(m[1])
}

// register signs email up and returns the verification link from the
// mail.
func (b *browser) register(email string) string {
	b.t.Helper()
	p := b.submit(realm.AuthPrefix+"register", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Check your inbox") {
		b.t.Fatalf("register %s = %d: %s", email, p.status, p.body)
	}
	m := b.w.sink.Next(b.t, 10*time.Second)
	link := linkRE.FindString(m.Body)
	if link == "" {
		b.t.Fatalf("no verification link in the mail to %s: %s", email, m.Body)
	}
	return link
}

// confirm follows a verification link with the password the test's users
// register with: GET shows the form, POST uses it.
func (b *browser) confirm(link string) page {
	b.t.Helper()
	return b.confirmWith(link, password)
}

// confirmWith follows a verification link, typing pw on its form.
func (b *browser) confirmWith(link, pw string) page {
	b.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		b.t.Fatal(err)
	}
	p := b.do("GET", u.RequestURI(), nil)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET verification link = %d: %s", p.status, p.body)
	}
	return b.submit(u.RequestURI(), url.Values{"token": {u.Query().Get("token")}, "password": {pw}})
}

// signIn posts the password form and returns the answer.
func (b *browser) signIn(email, pw string) page {
	b.t.Helper()
	return b.submit(realm.AuthPrefix+"signin", url.Values{"email": {email}, "password": {pw}})
}

// enrol completes the first sign-in: it reads the TOTP key from the
// enrolment page, sends the current code, and returns the key and the
// recovery codes.
func (b *browser) enrol() (secret string, codes []string) {
	b.t.Helper()
	p := b.do("GET", realm.AuthPrefix+"mfa", nil)
	m := secretRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		b.t.Fatalf("enrolment page = %d without a key: %s", p.status, p.body)
	}
	secret = m[1]
	p = b.submit(realm.AuthPrefix+"mfa", url.Values{"code": {b.w.code(secret)}})
	if p.status != http.StatusOK {
		b.t.Fatalf("enrol = %d: %s", p.status, p.body)
	}
	for _, m := range codesRE.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, m[1])
	}
	return secret, codes
}

// code is the TOTP code of secret at the app's clock.
func (w *world) code(secret string) string {
	c, err := totp.GenerateCode(secret, w.clock.Now())
	if err != nil {
		panic(err)
	}
	return c
}

// signUp registers, verifies and enrols a new end user, leaving b signed
// in; it returns the TOTP key and recovery codes.
func (b *browser) signUp(email string) (string, []string) {
	b.t.Helper()
	link := b.register(email)
	if p := b.confirm(link); p.status != http.StatusOK {
		b.t.Fatalf("confirm = %d: %s", p.status, p.body)
	}
	if p := b.signIn(email, password); p.status != http.StatusSeeOther {
		b.t.Fatalf("sign in = %d: %s", p.status, p.body)
	}
	return b.enrol()
}
