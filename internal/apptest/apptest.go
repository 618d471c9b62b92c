// Package apptest starts the whole Rampart app on 127.0.0.1:0 in a
// temporary data directory, for end-to-end tests over real HTTP.
package apptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/logging"
)

// AdminPassword is the password of the admin user of every test app.
const AdminPassword = "admin-password-for-tests"

// App is a running Rampart under test.
type App struct {
	*app.App
	URL     string
	DataDir string
	cancel  context.CancelFunc
	done    chan error
	// transport trusts the app's CA when it serves TLS (nil otherwise).
	transport http.RoundTripper
	// clock is the app's clock (nil: the real one).
	clock func() time.Time
}

// Option changes how the app is configured or built before start.
type Option func(*setup)

// setup is what options change.
type setup struct {
	cfg   config.Config
	clock func() time.Time
	repos repos
}

// repos is what app.Options.Repos takes.
type repos interface {
	RepoPath(ctx context.Context, repoID int64) (path, defaultBranch string, err error)
}

// WithStore runs the app on the given database URL.
func WithStore(url string) Option { return func(s *setup) { s.cfg.Store = url } }

// WithDataDir reuses a data directory (to test restarts).
func WithDataDir(dir string) Option { return func(s *setup) { s.cfg.DataDir = dir } }

// WithConfig changes the configuration before start.
func WithConfig(f func(*config.Config)) Option { return func(s *setup) { f(&s.cfg) } }

// WithPreDeployAudited loads a policy bundle that puts the pre-deploy
// policies (RMP-DEP-*) in audit mode, for tests that deploy images of a
// throwaway registry without signatures or provenance: their decisions
// are still recorded, but they do not deny.
func WithPreDeployAudited(t testing.TB) Option {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/policy.yaml", []byte("modes:\n  - policy: RMP-DEP-*\n    mode: audit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return WithConfig(func(c *config.Config) { c.Policy.Dir = dir })
}

// WithClock makes the app read the time from now (see Clock) wherever
// time decides something: sessions, tokens, TOTP, sign-in throttling and
// the audit log.
func WithClock(now func() time.Time) Option { return func(s *setup) { s.clock = now } }

// WithRepos tells boards and alerts where repositories live (tests that
// publish scm events for repositories they built with git).
func WithRepos(r interface {
	RepoPath(ctx context.Context, repoID int64) (path, defaultBranch string, err error)
}) Option {
	return func(s *setup) { s.repos = r }
}

// Clock is a settable clock (see package fakeclock).
type Clock = fakeclock.Clock

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock { return fakeclock.New(start) }

// Start runs the app until the test ends.
func Start(t testing.TB, opts ...Option) *App {
	t.Helper()
	st := setup{cfg: config.Default()}
	st.cfg.DataDir = t.TempDir()
	st.cfg.TLS = false
	st.cfg.AdminPassword = AdminPassword
	st.cfg.LogLevel = "warn"
	st.cfg.Limits.ShutdownGrace = 5 * time.Second
	st.cfg.Gateway.Addr = "127.0.0.1:0"
	st.cfg.Gateway.TLS = false
	for _, o := range opts {
		o(&st)
	}
	cfg := st.cfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: logging.New(testWriter{t}, cfg.LogLevel), Listener: ln, Clock: st.clock,
		Repos: st.repos})
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	ta := &App{App: a, URL: a.URL(), DataDir: cfg.DataDir, cancel: cancel, done: make(chan error, 1), clock: st.clock}
	if ca := a.CAFile(); ca != "" {
		// WithConfig turned TLS on: clients trust the app's own CA.
		pemData, err := os.ReadFile(ca)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemData)
		ta.transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() { ta.Stop(t) })
	return ta
}

// Stop shuts the app down and waits for it (idempotent).
func (a *App) Stop(t testing.TB) {
	t.Helper()
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("app stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("app did not stop within 30s")
	}
}

// testWriter sends log lines to t.Log so they show with failures only.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Client is an API client for tests.
type Client struct {
	t     testing.TB
	base  string
	Token string
	HTTP  *http.Client
}

// Client returns an API client using token ("" for anonymous).
func (a *App) Client(t testing.TB, token string) *Client {
	return &Client{t: t, base: a.URL, Token: token, HTTP: &http.Client{Timeout: 30 * time.Second, Transport: a.transport}}
}

// Browser returns an HTTP client with a cookie jar that does not follow
// redirects (tests look at them).
func (a *App) Browser(t testing.TB) *http.Client {
	var jar http.CookieJar
	jar, _ = cookiejar.New(nil)
	if a.clock != nil {
		jar = clockJar{CookieJar: jar, now: a.clock}
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: a.transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// clockJar keeps the cookies of an app running on a test clock: their
// Expires is on that clock, while the jar drops cookies by the real one,
// so a session cookie set on a clock days behind would be dropped at once.
// It moves Expires to the real clock, keeping the time left.
type clockJar struct {
	http.CookieJar
	now func() time.Time
}

func (j clockJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	shift := time.Since(j.now())
	for _, c := range cookies {
		if !c.Expires.IsZero() {
			c.Expires = c.Expires.Add(shift)
		}
	}
	j.CookieJar.SetCookies(u, cookies)
}

// Response is a finished API call.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v or fails the test.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON).
func (c *Client) Do(method, path string, body any) Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Must sends a request and fails the test unless the status is want.
func (c *Client) Must(want int, method, path string, body any) Response {
	c.t.Helper()
	r := c.Do(method, path, body)
	if r.Status != want {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// Login signs in with a password and returns an admin-scoped token.
func (a *App) Login(t testing.TB, username, password string) string {
	t.Helper()
	var res httpapi.LoginResponse
	a.Client(t, "").Must(http.StatusCreated, "POST", httpapi.Prefix+"/auth/login",
		httpapi.LoginRequest{Username: username, Password: password}).Decode(t, &res)
	return res.Token.Secret
}

// AdminToken returns an admin-scoped token of the site administrator.
func (a *App) AdminToken(t testing.TB) string { return a.Login(t, "admin", AdminPassword) }

// UserPassword is the password CreateUser gives new users.
const UserPassword = "user-password-for-tests"

// CreateUser creates a user with UserPassword (as the admin) and returns
// an admin-scoped token of theirs.
func (a *App) CreateUser(t testing.TB, admin *Client, username string) string {
	t.Helper()
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/users", httpapi.CreateUserRequest{
		Username: username, Email: username + "@example.test", Password: UserPassword})
	return a.Login(t, username, UserPassword)
}
