package oidcop_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
)

// browserAs signs a browser (following redirects) in with a password.
func browserAs(t *testing.T, a *apptest.App, user, password string) *http.Client {
	t.Helper()
	b := newBrowser()
	_, form := get(t, b, a.URL+"/login")
	if _, p := postForm(t, b, a.URL+"/login", url.Values{"csrf_token": {csrf(t, form)}, "username": {user}, "password": {password},
		"next": {"/"}}); p.URL.Path != "/" {
		t.Fatalf("sign-in ended at %s", p.URL)
	}
	return b
}

func TestWeb_ClientAdministration(t *testing.T) {
	a := apptest.Start(t)
	b := browserAs(t, a, "admin", apptest.AdminPassword)
	_, list := get(t, b, a.URL+"/admin/oidc/clients")
	if list.Status != http.StatusOK || !strings.Contains(list.Body, oidcop.CLIClientID) || !strings.Contains(list.Body, `id="keys"`) {
		t.Fatalf("clients page %d: %.300s", list.Status, list.Body)
	}
	_, bad := postForm(t, b, a.URL+"/admin/oidc/clients", url.Values{"csrf_token": {csrf(t, list)}, "name": {"Wiki"},
		"type": {"confidential"}, "redirect_uris": {"http://wiki.example/cb"}})
	if bad.Status != http.StatusUnprocessableEntity || !strings.Contains(bad.Body, "must use https") {
		t.Fatalf("bad redirect URI: %d %.300s", bad.Status, bad.Body)
	}
	_, created := postForm(t, b, a.URL+"/admin/oidc/clients", url.Values{"csrf_token": {csrf(t, list)}, "name": {"Wiki"},
		"type": {"confidential"}, "redirect_uris": {"https://wiki.example/cb\nhttp://localhost:8080/cb"}, "scopes": {"repo:read"}})
	id := regexp.MustCompile(`id="client-id">([^<]+)<`).FindStringSubmatch(created.Body)
	secret := regexp.MustCompile(`id="client-secret">(rps_[^<]+)<`).FindStringSubmatch(created.Body)
	if created.Status != http.StatusCreated || id == nil || secret == nil {
		t.Fatalf("created page %d: %.600s", created.Status, created.Body)
	}
	_, list = get(t, b, a.URL+"/admin/oidc/clients")
	if !strings.Contains(list.Body, id[1]) || strings.Contains(list.Body, secret[1]) {
		t.Fatal("the list lacks the client or shows its secret")
	}
	_, after := postForm(t, b, a.URL+"/admin/oidc/clients/"+id[1]+"/delete", url.Values{"csrf_token": {csrf(t, list)}})
	if after.URL.Path != "/admin/oidc/clients" || strings.Contains(after.Body, id[1]) {
		t.Fatalf("after delete at %s: still listed", after.URL)
	}
	// Without the CSRF token nothing changes.
	_, forged := postForm(t, b, a.URL+"/admin/oidc/keys/rotate", url.Values{})
	if forged.Status != http.StatusForbidden {
		t.Fatalf("rotate without CSRF = %d", forged.Status)
	}

	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "frank")
	fb := browserAs(t, a, "frank", apptest.UserPassword)
	if _, p := get(t, fb, a.URL+"/admin/oidc/clients"); p.Status != http.StatusForbidden {
		t.Fatalf("non-admin clients page = %d", p.Status)
	}
}

func TestWeb_DevicePageRefusesBadCodes(t *testing.T) {
	a := apptest.Start(t)
	b := browserAs(t, a, "admin", apptest.AdminPassword)
	_, form := get(t, b, a.URL+oidcop.DevicePath)
	for _, tc := range []struct {
		code, want string
		status     int
	}{
		{"BCDF-GHJK", "no device is waiting", http.StatusNotFound},
		{"ABCD-EFGH", "only the letters", http.StatusUnprocessableEntity},
		{"BCD", "8 letters", http.StatusUnprocessableEntity},
	} {
		_, p := postForm(t, b, a.URL+oidcop.DevicePath, url.Values{"csrf_token": {csrf(t, form)}, "user_code": {tc.code}, "decision": {"approve"}})
		if p.Status != tc.status || !strings.Contains(p.Body, tc.want) {
			t.Errorf("code %q: %d, want %d with %q", tc.code, p.Status, tc.status, tc.want)
		}
	}
	// Signed out, the page sends the browser to sign in and back.
	resp, _ := get(t, apptestNoRedirect(a), a.URL+oidcop.DevicePath+"?user_code=BCDF-GHJK")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("signed-out device page: %d %s", resp.StatusCode, loc)
	}
}

func apptestNoRedirect(a *apptest.App) *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
