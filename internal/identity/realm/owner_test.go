package realm_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/realm"
)

// TestOwnerActions: an owner resets a user's second factors (their
// sessions end, they enrol again) and removes a user (they cannot sign
// in; registering again starts over).
func TestOwnerActions(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	b.signUp("max@example.com")
	var us []realm.UserJSON
	w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/shop/realm/users", nil).Decode(t, &us)
	if len(us) != 1 || !us[0].TOTP || us[0].RecoveryLeft != 10 {
		t.Fatalf("users = %+v", us)
	}
	path := httpapi.Prefix + "/orgs/shop/realm/users/" + strconv.FormatInt(us[0].ID, 10)

	w.admin.Must(http.StatusNoContent, "POST", path+"/reset-mfa", nil)
	if p := b.do("GET", "/", nil); p.status != http.StatusSeeOther {
		t.Errorf("session after the MFA reset: %d, want 303", p.status)
	}
	w.clock.Advance(31 * time.Second)
	b2 := w.browser(t)
	if p := b2.signIn("max@example.com", password); p.status != http.StatusSeeOther {
		t.Fatalf("sign in = %d", p.status)
	}
	if p := b2.do("GET", realm.AuthPrefix+"mfa", nil); !secretRE.MatchString(p.body) {
		t.Errorf("after the MFA reset the user is not asked to enrol: %d", p.status)
	}

	w.admin.Must(http.StatusNoContent, "DELETE", path, nil)
	if p := w.browser(t).signIn("max@example.com", password); p.status != http.StatusUnauthorized {
		t.Errorf("a removed user signs in: %d", p.status)
	}
	if res := w.admin.Do("DELETE", path, nil); res.Status != http.StatusNotFound {
		t.Errorf("removing again = %d, want 404", res.Status)
	}
	if res := w.admin.Do("DELETE", httpapi.Prefix+"/orgs/shop/realm/users/abc", nil); res.Status != http.StatusNotFound {
		t.Errorf("a malformed id = %d, want 404", res.Status)
	}
	var actions []string
	for _, e := range auditActions(t, w, 0) {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "realm.user.mfa.reset") || !strings.Contains(got, "realm.user.delete") {
		t.Errorf("audited %s", got)
	}
}
