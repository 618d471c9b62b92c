package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
	"github.com/rampartsec/rampart/internal/testenv"
)

// The rampart binary is built once per test package run.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// rampartBinary builds cmd/rampart (once) and returns its path.
func rampartBinary(t *testing.T) string {
	t.Helper()
	gobin := testenv.LookPath(t, "go")
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "rampart-federation-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rampart")
		cmd := exec.Command(gobin, "build", "-o", binPath, "./cmd/rampart")
		cmd.Dir = filepath.Join("..", "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build rampart: %v", buildErr)
	}
	return binPath
}

// syncBuffer collects a subprocess's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// upstreamAdminPassword is the admin password of the upstream process.
const upstreamAdminPassword = "upstream-admin-password"

// upstream is a second Rampart, in its own process, acting as the
// upstream identity provider. Its public URL uses 127.0.0.1, the
// downstream's localhost, so their cookies stay apart.
type upstream struct {
	URL   string
	token string
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// startUpstream runs `rampart up` until the test ends.
func startUpstream(t *testing.T) *upstream {
	t.Helper()
	bin := rampartBinary(t)
	port := freePort(t)
	u := &upstream{URL: "http://127.0.0.1:" + port}
	cmd := exec.Command(bin, "up", "--tls=off", "--gateway-addr", "127.0.0.1:0", "--addr", "127.0.0.1:"+port, "--url", u.URL, "--data", t.TempDir(), "--log-level", "warn")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAMPART_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "RAMPART_ADMIN_PASSWORD="+upstreamAdminPassword)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start upstream: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("upstream output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("upstream exited: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream not ready after 30s:\n%s", logs.String())
		}
	}
	var login httpapi.LoginResponse
	u.call(t, http.StatusCreated, "POST", httpapi.Prefix+"/auth/login", httpapi.LoginRequest{Username: "admin", Password: upstreamAdminPassword}, &login)
	u.token = login.Token.Secret
	return u
}

// call sends an API request to the upstream as its admin.
func (u *upstream) call(t *testing.T, want int, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upstream %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("upstream %s %s = %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("upstream %s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// registerClient registers a confidential client for the downstream's
// callback and returns it with its secret.
func (u *upstream) registerClient(t *testing.T, name, redirectURI string) oidcop.CreatedClient {
	t.Helper()
	var c oidcop.CreatedClient
	u.call(t, http.StatusCreated, "POST", httpapi.Prefix+"/oidc/clients", oidcop.CreateClientRequest{Name: name, RedirectURIs: []string{redirectURI}}, &c)
	return c
}

// upstreamPassword is the password of every upstream user.
const upstreamPassword = "upstream-user-password"

// createUser creates an upstream user whose e-mail address the admin vouches for.
func (u *upstream) createUser(t *testing.T, name, email, displayName string) {
	t.Helper()
	u.call(t, http.StatusCreated, "POST", httpapi.Prefix+"/users", httpapi.CreateUserRequest{Username: name, Email: email,
		DisplayName: displayName, Password: upstreamPassword, EmailVerified: email != ""}, nil)
}

// enrolTOTP signs the user in to the upstream's own UI and adds an
// authenticator app; it returns the TOTP secret.
func (u *upstream) enrolTOTP(t *testing.T, name string) string {
	t.Helper()
	b := newBrowser(t)
	form := b.visit(u.URL + "/login")
	b.submit(form, "/login", url.Values{"username": {name}, "password": {upstreamPassword}})
	p := b.visit(u.URL + "/account/totp")
	m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no TOTP secret on %s: %.500s", p.URL, p.Body)
	}
	code, err := totp.GenerateCode(m[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if done := b.submit(p, "/account/totp", url.Values{"code": {code}}); !strings.Contains(done.Body, "recovery") {
		t.Fatalf("TOTP enrolment of %s did not finish: %s %.500s", name, done.URL, done.Body)
	}
	return m[1]
}

// browser is an HTTP client with a cookie jar that follows redirects and
// meta-refresh pages itself, so tests can stop and look at each step.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is where the browser landed.
type page struct {
	URL    *url.URL
	Status int
	Body   string
}

var metaRefreshRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`)

// next returns where a response sends the browser on its own: a redirect
// or a meta refresh.
func (p page) next(loc string) string {
	if p.Status >= 300 && p.Status < 400 && loc != "" {
		return loc
	}
	if m := metaRefreshRE.FindStringSubmatch(p.Body); p.Status == http.StatusOK && m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

func (b *browser) do(req *http.Request) (page, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{URL: req.URL, Status: resp.StatusCode, Body: string(body)}, resp.Header.Get("Location")
}

// follow goes on from p until a page stays (or stop says to halt before
// a URL, which it then returns).
func (b *browser) follow(p page, loc string, stop func(*url.URL) bool) (page, *url.URL) {
	b.t.Helper()
	for range 20 {
		n := p.next(loc)
		if n == "" {
			return p, nil
		}
		u, err := p.URL.Parse(n)
		if err != nil {
			b.t.Fatalf("bad location %q: %v", n, err)
		}
		if stop != nil && stop(u) {
			return p, u
		}
		req, _ := http.NewRequest("GET", u.String(), nil)
		p, loc = b.do(req)
	}
	b.t.Fatalf("too many redirects from %s", p.URL)
	return p, nil
}

// visit opens a URL and follows where it leads.
func (b *browser) visit(u string) page {
	b.t.Helper()
	p, _ := b.visitUntil(u, nil)
	return p
}

func (b *browser) visitUntil(u string, stop func(*url.URL) bool) (page, *url.URL) {
	b.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	p, loc := b.do(req)
	return b.follow(p, loc, stop)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// submit posts a form of page p (with its CSRF token) to path on p's host
// and follows where it leads.
func (b *browser) submit(p page, path string, v url.Values) page {
	b.t.Helper()
	got, _ := b.submitUntil(p, path, v, nil)
	return got
}

func (b *browser) submitUntil(p page, path string, v url.Values, stop func(*url.URL) bool) (page, *url.URL) {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		b.t.Fatalf("no form on %s (%d): %.500s", p.URL, p.Status, p.Body)
	}
	v.Set("csrf_token", html.UnescapeString(m[1]))
	target, _ := p.URL.Parse(path)
	req, _ := http.NewRequest("POST", target.String(), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", target.Scheme+"://"+target.Host)
	got, loc := b.do(req)
	return b.follow(got, loc, stop)
}

// cookie returns a cookie the browser holds for u.
func (b *browser) cookie(u, name string) *http.Cookie {
	pu, _ := url.Parse(u)
	for _, c := range b.c.Jar.Cookies(pu) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// me returns who the browser is signed in as downstream, or "" when it
// is not.
func (b *browser) me(a *apptest.App) (httpapi.Me, bool) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", a.URL+httpapi.Prefix+"/user", nil)
	p, _ := b.do(req)
	if p.Status == http.StatusUnauthorized {
		return httpapi.Me{}, false
	}
	if p.Status != http.StatusOK {
		b.t.Fatalf("GET /api/v1/user = %d: %s", p.Status, p.Body)
	}
	var me httpapi.Me
	if err := json.Unmarshal([]byte(p.Body), &me); err != nil {
		b.t.Fatal(err)
	}
	return me, true
}

var buttonRE = regexp.MustCompile(`<a class="button secondary" href="([^"]+)">Sign in with ([^<]+)</a>`)

// startSignIn clicks the button labelled label on the downstream sign-in
// page and follows the browser to where it lands (normally the upstream
// sign-in form).
func (b *browser) startSignIn(a *apptest.App, label string) page {
	b.t.Helper()
	login := b.visit(a.URL + "/login")
	var labels []string
	for _, m := range buttonRE.FindAllStringSubmatch(login.Body, -1) {
		if got := html.UnescapeString(m[2]); got == label {
			return b.visit(a.URL + html.UnescapeString(m[1]))
		} else {
			labels = append(labels, got)
		}
	}
	b.t.Fatalf("no button %q on the sign-in page (have %q)", label, labels)
	return page{}
}

func isCallback(u *url.URL) bool { return u.Path == federation.CallbackPath }

// upstreamSignIn fills the upstream's sign-in form (and its one-time code
// form with totpSecret) and returns the callback URL the upstream sends
// the browser back to, unvisited.
func (b *browser) upstreamSignIn(form page, user, totpSecret string) *url.URL {
	b.t.Helper()
	if form.URL.Path != "/login" || form.Status != http.StatusOK {
		b.t.Fatalf("expected the upstream sign-in form, got %s (%d): %.500s", form.URL, form.Status, form.Body)
	}
	p, cb := b.submitUntil(form, "/login", url.Values{"username": {user}, "password": {upstreamPassword},
		"next": {form.URL.Query().Get("next")}}, isCallback)
	if totpSecret != "" {
		if p.URL.Path != "/login/verify" {
			b.t.Fatalf("expected the upstream's second-factor form, got %s (%d)", p.URL, p.Status)
		}
		// The enrolment used the current step: the next one is fresh.
		code, err := totp.GenerateCode(totpSecret, time.Now().Add(30*time.Second))
		if err != nil {
			b.t.Fatal(err)
		}
		p, cb = b.submitUntil(p, "/login/verify", url.Values{"code": {code}}, isCallback)
	}
	if cb == nil {
		b.t.Fatalf("the upstream did not send the browser back: %s (%d): %.500s", p.URL, p.Status, p.Body)
	}
	return cb
}

var errorRE = regexp.MustCompile(`(?s)<div class="error"[^>]*>(.*?)</div>`)

// pageError returns the error message shown on a page.
func pageError(p page) string {
	if m := errorRE.FindStringSubmatch(p.Body); m != nil {
		return html.UnescapeString(strings.TrimSpace(m[1]))
	}
	return ""
}

// auditCount counts the audit entries of an action (and outcome, if set).
func auditEntries(t *testing.T, a *apptest.App, action, outcome string) []audit.Entry {
	t.Helper()
	es, err := a.Audit.List(context.Background(), audit.Filter{Action: action, Outcome: outcome, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return es
}
