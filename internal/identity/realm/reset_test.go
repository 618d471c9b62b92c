package realm_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/identity/realm"
)

var resetLinkRE = regexp.MustCompile(`http://\S+/\.rampart/auth/reset\?token=([A-Za-z0-9_-]+)`)

// TestPasswordReset: a reset link is mailed only to a confirmed account,
// works once, needs a valid new password, ends the account's sessions,
// and still leaves the second factor to pass.
func TestPasswordReset(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	secret, _ := b.signUp("lea@example.com")
	mails := len(w.sink.Messages())

	other := w.browser(t)
	for _, email := range []string{"nobody@example.com", "lea@example.com"} {
		p := other.submit(realm.AuthPrefix+"forgot", url.Values{"email": {email}})
		if p.status != http.StatusOK || !strings.Contains(p.body, `id="reset-sent"`) {
			t.Fatalf("forgot %s = %d: %s", email, p.status, errorOf(p))
		}
	}
	m := w.sink.Next(t, 10*time.Second)
	if n := len(w.sink.Messages()); n != mails+1 || m.To[0] != "lea@example.com" {
		t.Fatalf("%d mails, the last to %v; want one to lea", n-mails, m.To)
	}
	match := resetLinkRE.FindStringSubmatch(m.Body)
	if match == nil {
		t.Fatalf("no reset link: %s", m.Body)
	}
	token := match[1]

	// A weak password is refused and the link keeps working.
	mark := w.a.Mark(t)
	p := other.submit(realm.AuthPrefix+"reset?token="+token, url.Values{"token": {token}, "password": {"short"}})
	if p.status != http.StatusBadRequest || !strings.Contains(errorOf(p), "at least 10") {
		t.Errorf("weak password = %d %q", p.status, errorOf(p))
	}
	mark.Unchanged(t)

	const newPassword = "a brand new passphrase"
	p = other.submit(realm.AuthPrefix+"reset?token="+token, url.Values{"token": {token}, "password": {newPassword}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="password-changed"`) {
		t.Fatalf("reset = %d %q", p.status, errorOf(p))
	}
	if p := b.do("GET", "/", nil); p.status != http.StatusSeeOther {
		t.Errorf("a session from before the reset still works: %d", p.status)
	}
	if p := other.submit(realm.AuthPrefix+"reset?token="+token, url.Values{"token": {token}, "password": {"yet another passphrase"}}); p.status != http.StatusBadRequest {
		t.Errorf("the link used twice = %d, want 400", p.status)
	}
	if p := w.browser(t).signIn("lea@example.com", password); p.status != http.StatusUnauthorized {
		t.Errorf("the old password = %d, want 401", p.status)
	}
	w.clock.Advance(31 * time.Second)
	n := w.browser(t)
	if p := n.signIn("lea@example.com", newPassword); p.status != http.StatusSeeOther || !strings.Contains(p.location, "mfa") {
		t.Fatalf("the new password = %d to %q, want the second factor next", p.status, p.location)
	}
	if p := n.submit(realm.AuthPrefix+"mfa", url.Values{"code": {w.code(secret)}}); p.status != http.StatusSeeOther {
		t.Errorf("code after the reset = %d %q", p.status, errorOf(p))
	}
}
