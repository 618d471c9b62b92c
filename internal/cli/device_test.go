package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
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

// rampart runs the CLI with its configuration in dir.
func rampart(t *testing.T, dir string, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	return cli.Main(t.Context(), cli.Env{Args: args, Stdout: stdout, Stderr: stderr, Stdin: strings.NewReader(""),
		Getenv: func(k string) string {
			if k == "RAMPART_CONFIG_DIR" {
				return dir
			}
			return ""
		}})
}

type savedCredentials struct {
	Current string `json:"current"`
	Servers map[string]struct {
		Token        string    `json:"token"`
		RefreshToken string    `json:"refresh_token"`
		Expiry       time.Time `json:"expiry"`
		Username     string    `json:"username"`
	} `json:"servers"`
}

func readCredentials(t *testing.T, dir string) (savedCredentials, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c savedCredentials
	var raw map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &raw)
	return c, raw
}

var (
	userCodeRE = regexp.MustCompile(`code ([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})`)
	csrfRE     = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

// browserSignIn signs a browser in with a password.
func browserSignIn(t *testing.T, a *apptest.App, user, password string) *http.Client {
	t.Helper()
	b := a.Browser(t)
	form := fetch(t, b, "GET", a.URL+"/login", nil, http.StatusOK)
	fetch(t, b, "POST", a.URL+"/login", url.Values{"csrf_token": {csrfOf(t, form)}, "username": {user}, "password": {password}, "next": {"/"}},
		http.StatusSeeOther)
	return b
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values, want int) string {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %.400s", method, u, resp.StatusCode, want, b)
	}
	return string(b)
}

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no CSRF token in %.300s", html)
	}
	return m[1]
}

// deviceLogin starts `rampart login --server URL` and returns the user
// code it prints and a channel with its exit code.
func deviceLogin(t *testing.T, a *apptest.App, dir string) (string, *syncBuffer, chan int) {
	t.Helper()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- rampart(t, dir, io.Discard, stderr, "login", "--server", a.URL) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := userCodeRE.FindStringSubmatch(stderr.String()); m != nil {
			if !strings.Contains(stderr.String(), a.URL+"/device") {
				t.Errorf("no verification URL in %q", stderr.String())
			}
			return m[1], stderr, done
		}
		select {
		case code := <-done:
			t.Fatalf("login exited %d early: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no user code printed: %q", stderr.String())
	return "", nil, nil
}

func decide(t *testing.T, a *apptest.App, b *http.Client, code, decision string) string {
	t.Helper()
	page := fetch(t, b, "GET", a.URL+"/device?user_code="+url.QueryEscape(strings.ToLower(code)), nil, http.StatusOK)
	if !strings.Contains(page, "Rampart command line") || !strings.Contains(page, "<code>admin</code>") {
		t.Fatalf("approval page does not show the client and scopes: %.600s", page)
	}
	return fetch(t, b, "POST", a.URL+"/device", url.Values{"csrf_token": {csrfOf(t, page)}, "user_code": {code}, "decision": {decision}},
		http.StatusOK)
}

func waitExit(t *testing.T, done chan int, stderr *syncBuffer) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("login did not finish: %s", stderr.String())
	}
	return -1
}

func TestLogin_DeviceFlow(t *testing.T) {
	const lifetime = 4 * time.Second
	a := apptest.Start(t, apptest.WithConfig(func(c *config.Config) {
		c.OIDC.AccessTokenLifetime = lifetime
		c.OIDC.DevicePollInterval = time.Second
	}))
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "dave")
	dir := t.TempDir()
	browser := browserSignIn(t, a, "dave", apptest.UserPassword)

	code, stderr, done := deviceLogin(t, a, dir)
	if res := decide(t, a, browser, code, "approve"); !strings.Contains(res, "Device connected") {
		t.Fatalf("approval result: %.400s", res)
	}
	if exit := waitExit(t, done, stderr); exit != cli.ExitOK {
		t.Fatalf("login exit %d: %s", exit, stderr.String())
	}
	creds, _ := readCredentials(t, dir)
	entry := creds.Servers[a.URL]
	if creds.Current != a.URL || entry.Username != "dave" || entry.RefreshToken == "" || entry.Expiry.IsZero() {
		t.Fatalf("saved credentials: %+v", creds)
	}

	whoami := func() httpapi.Me {
		t.Helper()
		var out, errb bytes.Buffer
		if exit := rampart(t, dir, &out, &errb, "whoami", "--output", "json"); exit != cli.ExitOK {
			t.Fatalf("whoami exit %d: %s", exit, errb.String())
		}
		var me httpapi.Me
		if err := json.Unmarshal(out.Bytes(), &me); err != nil {
			t.Fatal(err)
		}
		return me
	}
	if me := whoami(); me.Username != "dave" || me.Credential != "oauth" {
		t.Fatalf("whoami = %+v", me)
	}
	if after, _ := readCredentials(t, dir); after.Servers[a.URL].Token != entry.Token {
		t.Fatal("whoami refreshed a token that was still valid")
	}

	// Let the access token expire: the server refuses it, the CLI refreshes.
	// (expires_in is whole seconds, so the saved expiry may be up to a
	// second early.)
	time.Sleep(time.Until(entry.Expiry))
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r := a.Client(t, entry.Token).Do("GET", httpapi.Prefix+"/user", nil); r.Status == http.StatusUnauthorized {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the expired access token still works: %d", r.Status)
		}
	}
	if me := whoami(); me.Username != "dave" {
		t.Fatalf("whoami after expiry = %+v", me)
	}
	refreshed, raw := readCredentials(t, dir)
	r := refreshed.Servers[a.URL]
	if r.Token == entry.Token || r.RefreshToken == entry.RefreshToken || !r.Expiry.After(entry.Expiry) {
		t.Fatalf("the token pair was not refreshed and saved: %+v", r)
	}

	// A token the server refuses before its saved expiry is refreshed too.
	servers := raw["servers"].(map[string]any)
	e := servers[a.URL].(map[string]any)
	e["token"], e["expiry"] = entry.Token, time.Now().Add(time.Hour)
	b, _ := json.Marshal(raw)
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if me := whoami(); me.Username != "dave" {
		t.Fatalf("whoami with a refused token = %+v", me)
	}

	// Logging out ends the grant on the server.
	last, _ := readCredentials(t, dir)
	if exit := rampart(t, dir, io.Discard, io.Discard, "logout"); exit != cli.ExitOK {
		t.Fatalf("logout exit %d", exit)
	}
	resp, err := http.PostForm(a.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"rampart-cli"},
		"refresh_token": {last.Servers[a.URL].RefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("refresh after logout = %d, want 400", resp.StatusCode)
	}
}

func TestLogin_DeviceFlowDenied(t *testing.T) {
	a := apptest.Start(t, apptest.WithConfig(func(c *config.Config) { c.OIDC.DevicePollInterval = time.Second }))
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "erin")
	dir := t.TempDir()
	code, stderr, done := deviceLogin(t, a, dir)
	if res := decide(t, a, browserSignIn(t, a, "erin", apptest.UserPassword), code, "deny"); !strings.Contains(res, "Access denied") {
		t.Fatalf("deny result: %.400s", res)
	}
	if exit := waitExit(t, done, stderr); exit != cli.ExitForbidden || !strings.Contains(stderr.String(), "denied") {
		t.Fatalf("login exit %d: %s", exit, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "credentials.json")); err == nil {
		t.Fatal("a denied login saved credentials")
	}
}
