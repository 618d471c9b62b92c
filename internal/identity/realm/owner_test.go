package realm_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

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

// TestRotateKey: after a rotation new tokens carry the new key id, and
// the old key stays published until tokens signed with it have expired.
func TestRotateKey(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	b.signUp("nia@example.com")
	if p := b.do("GET", "/", nil); p.status != http.StatusOK {
		t.Fatalf("GET = %d", p.status)
	}
	oldTok := w.backend.lastToken()
	var before, after realm.RealmJSON
	w.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/shop/realm", nil).Decode(t, &before)
	w.admin.Must(http.StatusOK, "POST", httpapi.Prefix+"/orgs/shop/realm/rotate-key", nil).Decode(t, &after)
	if after.KeyID == before.KeyID || after.KeyID == "" {
		t.Fatalf("key id %q → %q", before.KeyID, after.KeyID)
	}
	var set jose.JSONWebKeySet
	w.a.Client(t, "").Must(http.StatusOK, "GET", "/api/v1/realms/shop/jwks", nil).Decode(t, &set)
	if len(set.Keys) != 2 || set.Keys[0].KeyID != after.KeyID || set.Keys[1].KeyID != before.KeyID {
		t.Fatalf("JWKS after the rotation: %d keys", len(set.Keys))
	}
	if _, err := verify(oldTok, set); err != nil {
		t.Errorf("a token signed before the rotation does not verify: %v", err)
	}
	if p := b.do("GET", "/", nil); p.status != http.StatusOK {
		t.Fatalf("GET after the rotation = %d", p.status)
	}
	parsed, err := jwt.ParseSigned(w.backend.lastToken(), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || parsed.Headers[0].KeyID != after.KeyID {
		t.Errorf("token after the rotation signed with %q, want %q (%v)", parsed.Headers[0].KeyID, after.KeyID, err)
	}
	w.clock.Advance(realm.TokenLifetime + 6*time.Minute)
	set = jose.JSONWebKeySet{}
	w.a.Client(t, "").Must(http.StatusOK, "GET", "/api/v1/realms/shop/jwks", nil).Decode(t, &set)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != after.KeyID {
		t.Errorf("JWKS once old tokens expired: %d keys", len(set.Keys))
	}
	if res := w.admin.Do("POST", httpapi.Prefix+"/orgs/shop/realm/rotate-key", nil); res.Status != http.StatusOK {
		t.Errorf("second rotation = %d", res.Status)
	}
}

// TestReservedPrefix: the realm's pages answer under /.rampart/auth/ on a
// host whose only route has another path; other paths stay unrouted.
func TestReservedPrefix(t *testing.T) {
	w := newWorld(t, withRoute("path", "/app"))
	b := w.browser(t)
	if p := b.do("GET", realm.AuthPrefix+"signin", nil); p.status != http.StatusOK || !strings.Contains(p.body, `id="signin"`) {
		t.Errorf("sign-in page on a host routed only at /app = %d", p.status)
	}
	if p := b.do("GET", "/app/x", nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, realm.AuthPrefix+"signin?next=%2Fapp%2Fx") {
		t.Errorf("GET /app/x = %d to %q", p.status, p.location)
	}
	if p := b.do("GET", "/other", nil); p.status != http.StatusNotFound {
		t.Errorf("GET /other = %d, want 404 (no route)", p.status)
	}
}
