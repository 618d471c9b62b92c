package realm_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// TestGatewayDotSegments: a host with a sign-in route at / and a public
// route at /public. /public/../secret, plain or percent-encoded, would
// take the public route while an application resolving dot segments (as
// nginx, Apache or Tomcat in front of it do) serves /secret: the gateway
// refuses such paths, and nothing reaches the application without
// sign-in.
func TestGatewayDotSegments(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Like nginx: resolve dot segments of the decoded path.
		p := path.Clean(r.URL.Path)
		fmt.Fprintf(w, "served %s (raw %s) user=%v", p, r.RequestURI, r.Header.Get(gateway.UserHeader) != "")
	}))
	t.Cleanup(app.Close)
	w := newWorld(t, withRoute("backends", []map[string]any{{"url": app.URL}}))
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/projects/web/gateway/routes/pub",
		map[string]any{"host": w.host, "path": "/public", "backends": []map[string]any{{"url": app.URL}}, "auth": "none"})

	// Raw request lines, as an attacker's client sends them.
	u, _ := url.Parse(w.gw)
	reached := 0
	for _, target := range []string{"/secret", "/public/../secret", "/public/%2e%2e/secret", "/public/.%2E/secret",
		"/public/..%2fsecret", "/public/..%5Csecret", "/public/./x", "/public/x/..", "/public/ok.txt", "/public/...", "/public/%2e"} {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, u.Host)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		c.Close()
		switch target {
		case "/secret":
			if res.StatusCode == http.StatusOK {
				t.Errorf("GET /secret without sign-in: %d %s", res.StatusCode, body)
			}
		case "/public/ok.txt", "/public/...":
			// Dots inside a name, or three of them, are a name.
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d %s", target, res.StatusCode, body)
			}
			reached++
		default:
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "segments") {
				t.Errorf("GET %s: %d %s; want 400 naming dot segments", target, res.StatusCode, strings.TrimSpace(string(body)))
			}
		}
	}
	if reached != 2 {
		t.Errorf("%d plain requests reached the public route", reached)
	}
}

// TestGatewayForwardsNoClientUserHeaderOrRealmCookies: a signed-in
// request carrying its own X-Rampart-User under other spellings (CGI,
// WSGI and PHP backends read X_Rampart_User as HTTP_X_RAMPART_USER too)
// reaches the backend with the gateway's header only, and without the
// realm's session and CSRF cookies; the application's own cookies pass.
func TestGatewayForwardsNoClientUserHeaderOrRealmCookies(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Rampart-User") {
				fmt.Fprintf(w, "%s=%d:%v\n", k, len(v), strings.Contains(strings.Join(v, ","), "forged"))
			}
		}
		fmt.Fprintf(w, "cookies=%q\n", r.Header.Values("Cookie"))
	}))
	t.Cleanup(app.Close)
	w := newWorld(t, withRoute("backends", []map[string]any{{"url": app.URL}}))
	b := w.browser(t)
	b.signUp("bob@example.com")
	u, _ := url.Parse(w.gw)
	var cookie string
	for _, c := range b.http.Jar.Cookies(u) {
		cookie += c.Name + "=" + c.Value + "; "
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nCookie: %sapp=1\r\nX_Rampart_User: forged\r\nx-rampart-user: forged2\r\nConnection: close\r\n\r\n", u.Host, cookie)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	got := string(body)
	if res.StatusCode != http.StatusOK || got != "X-Rampart-User=1:false\ncookies=[\"app=1\"]\n" {
		t.Errorf("the backend saw %d:\n%s\nwant the gateway's user header alone and the app's cookie alone", res.StatusCode, got)
	}
}
