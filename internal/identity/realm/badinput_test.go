package realm_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/identity/realm"
)

// TestPages_BadInput sends forms a user or an attacker could send: each
// is refused with a clear message, changes nothing and sends no mail.
func TestPages_BadInput(t *testing.T) {
	w := newWorld(t)
	verified := w.browser(t)
	verified.signUp("frank@example.com")
	mails := len(w.sink.Messages())

	csrfOf := func(b *browser, path string) string {
		m := csrfRE.FindStringSubmatch(b.do("GET", path, nil).body)
		if m == nil {
			t.Fatalf("no CSRF token on %s", path)
		}
		return m[1]
	}
	cases := []struct {
		name   string
		path   string
		form   func(csrf string) url.Values
		status int
		want   string
	}{
		{"overlong e-mail", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {strings.Repeat("a", 250) + "@example.com"}, "password": {password}}
		}, http.StatusBadRequest, "enter an e-mail address"},
		{"not an e-mail address", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"frank at example.com"}, "password": {password}}
		}, http.StatusBadRequest, "enter an e-mail address"},
		{"e-mail with a display name", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"Frank <x@example.com>"}, "password": {password}}
		}, http.StatusBadRequest, "enter an e-mail address"},
		{"header injection in the e-mail", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"x@example.com\r\nBcc: all@example.com"}, "password": {password}}
		}, http.StatusBadRequest, "enter an e-mail address"},
		{"short password", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"gina@example.com"}, "password": {"short"}}
		}, http.StatusBadRequest, "at least 10 characters"},
		{"overlong password", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"gina@example.com"}, "password": {strings.Repeat("p", 300)}}
		}, http.StatusBadRequest, "at most 256 bytes"},
		{"CSRF token missing", "register", func(c string) url.Values {
			return url.Values{"email": {"gina@example.com"}, "password": {password}}
		}, http.StatusForbidden, "did not come from this site"},
		{"CSRF token wrong", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {strings.Repeat("A", 43)}, "email": {"gina@example.com"}, "password": {password}}
		}, http.StatusForbidden, "did not come from this site"},
		{"CSRF token missing on sign-in", "signin", func(c string) url.Values {
			return url.Values{"email": {"frank@example.com"}, "password": {password}}
		}, http.StatusForbidden, "did not come from this site"},
		{"form over 16 KiB", "register", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"gina@example.com"}, "password": {password}, "pad": {strings.Repeat("x", 20<<10)}}
		}, http.StatusBadRequest, "the form could not be read"},
		{"made-up verification token", "verify", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "token": {"bm90LWEtdG9rZW4tYXQtYWxsLWp1c3QtYS1ndWVzcw"}}
		}, http.StatusBadRequest, "invalid, expired or already used"},
		{"overlong verification token", "verify", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "token": {strings.Repeat("t", 5000)}}
		}, http.StatusBadRequest, "invalid, expired or already used"},
		{"wrong password", "signin", func(c string) url.Values {
			return url.Values{"csrf_token": {c}, "email": {"nobody@example.com"}, "password": {password}}
		}, http.StatusUnauthorized, "wrong e-mail address or password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := w.browser(t)
			c := csrfOf(b, realm.AuthPrefix+tc.path)
			mark := w.a.Mark(t)
			before := w.realmState(t)
			p := b.do("POST", realm.AuthPrefix+tc.path, tc.form(c))
			if p.status != tc.status || !strings.Contains(errorOf(p), tc.want) {
				t.Errorf("= %d %q, want %d with %q", p.status, errorOf(p), tc.status, tc.want)
			}
			mark.Unchanged(t)
			w.realmUnchanged(t, before)
			if n := len(w.sink.Messages()); n != mails {
				t.Errorf("%d mails sent", n-mails)
			}
		})
	}

	// A CSRF token of another browser does not work either.
	t.Run("CSRF token of another browser", func(t *testing.T) {
		a, b := w.browser(t), w.browser(t)
		c := csrfOf(a, realm.AuthPrefix+"register")
		csrfOf(b, realm.AuthPrefix+"register")
		p := b.do("POST", realm.AuthPrefix+"register", url.Values{"csrf_token": {c}, "email": {"gina@example.com"}, "password": {password}})
		if p.status != http.StatusForbidden {
			t.Errorf("= %d, want 403", p.status)
		}
	})

	// Registering a verified address again says the same as a new one
	// and mails a notice instead of a link.
	t.Run("registered address", func(t *testing.T) {
		w.clock.Advance(2 * time.Minute)
		before := w.realmState(t)
		b := w.browser(t)
		p := b.submit(realm.AuthPrefix+"register", url.Values{"email": {"FRANK@example.com"}, "password": {"another password 1"}})
		if p.status != http.StatusOK || !strings.Contains(p.body, "Check your inbox") {
			t.Fatalf("= %d: %s", p.status, p.body)
		}
		m := w.sink.Next(t, 10*time.Second)
		if !strings.Contains(m.Header.Get("Subject"), "You already have an account") || linkRE.MatchString(m.Body) {
			t.Errorf("notice mail = %q: %s", m.Header.Get("Subject"), m.Body)
		}
		w.realmUnchanged(t, before)
		if p := b.signIn("frank@example.com", "another password 1"); p.status != http.StatusUnauthorized {
			t.Errorf("the new password of a verified account signs in: %d", p.status)
		}
	})

	// Unknown pages and methods.
	t.Run("unknown page", func(t *testing.T) {
		b := w.browser(t)
		if p := b.do("GET", realm.AuthPrefix+"admin", nil); p.status != http.StatusNotFound {
			t.Errorf("GET unknown page = %d, want 404", p.status)
		}
		if p := b.do("DELETE", realm.AuthPrefix+"signin", nil); p.status != http.StatusMethodNotAllowed {
			t.Errorf("DELETE signin = %d, want 405", p.status)
		}
	})

	// An open redirect through next is refused.
	t.Run("next to another site", func(t *testing.T) {
		b := w.browser(t)
		b.signIn("frank@example.com", password)
		w.clock.Advance(31 * time.Second)
		p := b.submit(realm.AuthPrefix+"signin?next=//evil.example/x", url.Values{"email": {"frank@example.com"}, "password": {password}})
		if p.status != http.StatusSeeOther || strings.Contains(p.location, "evil") {
			t.Errorf("sign-in with next=//evil.example = %d to %q", p.status, p.location)
		}
	})
}

// TestRealmAPI checks the owners' API: creation needs a mail server, the
// SMTP password never comes back, changes are audited with the fields
// they touch, and deletion takes the users along.
func TestRealmAPI(t *testing.T) {
	w := newWorld(t)
	var got realm.RealmJSON
	w.admin.Must(http.StatusOK, "GET", "/api/v1/orgs/shop/realm", nil).Decode(t, &got)
	if !got.Configured || got.SMTP == nil || got.SMTP.HasPassword || got.Issuer != w.a.URL+"/api/v1/realms/shop" {
		t.Errorf("realm = %+v", got)
	}
	secret := "smtp-secret-value-123"
	res := w.admin.Must(http.StatusOK, "PUT", "/api/v1/orgs/shop/realm",
		map[string]any{"smtp": map[string]any{"username": "mailer", "password": secret}, "allow_signup": false})
	if strings.Contains(string(res.Body), secret) {
		t.Errorf("PUT answer shows the SMTP password: %s", res.Body)
	}
	res.Decode(t, &got)
	if !got.SMTP.HasPassword || got.AllowSignup {
		t.Errorf("after PUT: %+v", got)
	}
	for _, e := range auditActions(t, w, 0) {
		if e.Action == "realm.update" {
			if d := e.Details["changed"]; d == nil || !strings.Contains(strings.Join(toStrings(d), ","), "smtp_password") {
				t.Errorf("realm.update details = %v, want smtp_password named", e.Details)
			}
		}
	}
	raw := w.admin.Must(http.StatusOK, "GET", "/api/v1/orgs/shop/audit", nil).Body
	if strings.Contains(string(raw), secret) {
		t.Error("the audit log shows the SMTP password")
	}
	if p := w.browser(t).do("GET", realm.AuthPrefix+"register", nil); p.status != http.StatusForbidden {
		t.Errorf("register with sign-up off = %d, want 403", p.status)
	}

	bad := []struct {
		name string
		body string
		want string
	}{
		{"bad tls mode", `{"smtp":{"tls":"ssl3"}}`, "smtp tls must be"},
		{"bad port", `{"smtp":{"port":70000}}`, "smtp port"},
		{"bad host", `{"smtp":{"host":"mail server"}}`, "smtp host"},
		{"bad from", `{"smtp":{"from":"noreply"}}`, "smtp from"},
		{"short idle", `{"session_idle":"5s"}`, "idle timeout"},
		{"bad duration", `{"session_absolute":"forever"}`, "duration"},
		{"lifetime under idle", `{"session_idle":"2h","session_absolute":"1h"}`, "shorter than the idle"},
		{"unknown field", `{"smtp_host":"x"}`, "unknown field"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			mark := w.a.Mark(t)
			res := w.admin.Do("PUT", "/api/v1/orgs/shop/realm", tc.body)
			if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), tc.want) {
				t.Errorf("= %d %s, want 400 with %q", res.Status, res.Body, tc.want)
			}
			mark.Unchanged(t)
		})
	}

	w.admin.Must(http.StatusNoContent, "DELETE", "/api/v1/orgs/shop/realm", nil)
	w.admin.Must(http.StatusOK, "GET", "/api/v1/orgs/shop/realm", nil).Decode(t, &got)
	if got.Configured {
		t.Errorf("after DELETE: %+v", got)
	}
	var set struct{ Keys []any }
	w.a.Client(t, "").Must(http.StatusOK, "GET", "/api/v1/realms/shop/jwks", nil).Decode(t, &set)
	if len(set.Keys) != 0 {
		t.Errorf("JWKS of a deleted realm has %d keys", len(set.Keys))
	}
	// Without a realm the route fails closed.
	if p := w.browser(t).do("GET", "/", nil); p.status != http.StatusServiceUnavailable || w.backend.count() != 0 {
		t.Errorf("route without a realm = %d (backend hits %d), want 503", p.status, w.backend.count())
	}
	deletes := 0
	for _, e := range auditActions(t, w, 0) {
		if e.Action == "realm.delete" {
			deletes++
		}
	}
	if deletes != 1 {
		t.Errorf("audited %d realm.delete, want 1", deletes)
	}
}

func toStrings(v any) []string {
	var out []string
	if xs, ok := v.([]any); ok {
		for _, x := range xs {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
