package web_test

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
)

// browser is a web browser without JavaScript: a cookie jar that does not
// follow redirects and remembers the CSRF token of the last page it got.
type browser struct {
	t    *testing.T
	a    *apptest.App
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, a *apptest.App) *browser {
	return &browser{t: t, a: a, c: a.Browser(t)}
}

// page is a response as the tests look at it.
type page struct {
	status   int
	header   http.Header
	location string
	body     string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

// do sends a request with the browser's cookies; a 5xx fails the test.
func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if m := csrfMeta.FindSubmatch(body); m != nil {
		b.csrf = html.UnescapeString(string(m[1]))
	}
	if res.StatusCode >= 500 {
		b.t.Errorf("%s %s = %d", req.Method, req.URL.Path, res.StatusCode)
	}
	return page{status: res.StatusCode, header: res.Header, location: res.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), "GET", b.a.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form exactly as given (no CSRF token added); header adds
// request headers as key, value pairs.
func (b *browser) post(path string, form url.Values, header ...string) page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), "POST", b.a.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// submit posts a form with the current CSRF token, as a browser does.
func (b *browser) submit(path string, fields url.Values) page {
	b.t.Helper()
	if fields == nil {
		fields = url.Values{}
	}
	fields.Set("csrf_token", b.csrf)
	return b.post(path, fields)
}

// fetch posts JSON as rampart.js does, with csrf in X-CSRF-Token.
func (b *browser) fetch(path string, body []byte, csrf string) page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), "POST", b.a.URL+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return b.do(req)
}

func (b *browser) must(p page, status int, what string) page {
	b.t.Helper()
	if p.status != status {
		b.t.Fatalf("%s: status %d (location %q), want %d:\n%s", what, p.status, p.location, status, p.body)
	}
	return p
}

// signIn posts the password form and returns where it redirects to ("/"
// when signed in, a second-factor page otherwise).
func (b *browser) signIn(username, password string) string {
	b.t.Helper()
	b.must(b.get("/login"), http.StatusOK, "sign-in page")
	return b.must(b.submit("/login", url.Values{"username": {username}, "password": {password}, "next": {"/"}}),
		http.StatusSeeOther, "sign in").location
}

// mustSignIn signs in a user without a second factor.
func (b *browser) mustSignIn(username, password string) {
	b.t.Helper()
	if to := b.signIn(username, password); to != "/" {
		b.t.Fatalf("sign in as %s went to %q, want /", username, to)
	}
	b.must(b.get("/account"), http.StatusOK, "account page after sign-in")
}
