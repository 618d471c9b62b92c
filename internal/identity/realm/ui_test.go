package realm_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// TestWeb_RealmSettings: an org owner creates, changes and removes the
// realm from Rampart's web UI; a maintainer cannot open the page.
func TestWeb_RealmSettings(t *testing.T) {
	w := newWorld(t)
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "blue"})
	w.a.CreateUser(t, w.admin, "mallory")
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/blue/members/mallory", httpapi.RoleRequest{Role: "maintainer"})
	signIn := func(user, pw string) *browser {
		b := w.browser(t)
		l := b.postForm(b.follow(w.a.URL+"/login", nil), "/login", url.Values{"username": {user}, "password": {pw}}, nil)
		if !strings.HasSuffix(l.url, "/") || l.status != http.StatusOK {
			t.Fatalf("sign in as %s: %s %d", user, l.url, l.status)
		}
		return b
	}
	admin := signIn("admin", apptest.AdminPassword)
	if l := admin.follow(w.a.URL+"/orgs/blue/settings", nil); !strings.Contains(l.body, `href="/orgs/blue/realm"`) {
		t.Fatalf("the org settings do not link to the realm page")
	}
	page := admin.follow(w.a.URL+"/orgs/blue/realm", nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="no-realm"`) {
		t.Fatalf("realm page = %d: %.500s", page.status, page.body)
	}
	const secret = "ui-smtp-secret-1"
	form := url.Values{"display_name": {"Blue Shop"}, "allow_signup": {"on"}, "smtp_host": {"smtp.blue.test"}, "smtp_port": {""},
		"smtp_tls": {"starttls"}, "smtp_from": {"Blue <noreply@blue.test>"}, "smtp_username": {"blue"}, "smtp_password": {secret},
		"session_idle": {"20m"}, "session_absolute": {"8h"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("smtp_host", "not a host")
	mark := w.a.Mark(t)
	l := admin.postForm(page, "/orgs/blue/realm", bad, nil)
	if l.status != http.StatusUnprocessableEntity || !strings.Contains(l.body, "smtp host") || strings.Contains(l.body, secret) {
		t.Errorf("bad host = %d (secret echoed %v)", l.status, strings.Contains(l.body, secret))
	}
	mark.Unchanged(t)

	l = admin.postForm(page, "/orgs/blue/realm", form, nil)
	if l.status != http.StatusOK || !strings.Contains(l.body, "Realm saved") || !strings.Contains(l.body, w.a.URL+"/api/v1/realms/blue") ||
		strings.Contains(l.body, secret) || !strings.Contains(l.body, `value="20m"`) || !strings.Contains(l.body, `value="8h"`) {
		t.Fatalf("after saving: %s %d: %.2000s", l.url, l.status, l.body)
	}
	r, err := w.a.Realms.Get(t.Context(), orgID(t, w, "blue"))
	if err != nil || r.DisplayName != "Blue Shop" || !r.SMTP.HasPassword || r.SMTP.Port != 587 || r.SessionIdle.String() != "20m0s" {
		t.Fatalf("stored %+v, %v", r, err)
	}

	mallory := signIn("mallory", apptest.UserPassword)
	if l := mallory.follow(w.a.URL+"/orgs/blue/realm", nil); l.status != http.StatusForbidden {
		t.Errorf("a maintainer opens the realm page: %d", l.status)
	}

	l = admin.postForm(l, "/orgs/blue/realm/delete", url.Values{}, nil)
	if !strings.Contains(l.body, "Realm removed") || !strings.Contains(l.body, `id="no-realm"`) {
		t.Errorf("after removing: %d %.500s", l.status, l.body)
	}
}

func orgID(t *testing.T, w *world, name string) int64 {
	t.Helper()
	o, err := w.a.IDs.Org(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}
