package federation_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// federationEnv is a downstream Rampart (in process) whose org "acme"
// signs in through a second Rampart process (upstream).
type federationEnv struct {
	up    *upstream
	down  *apptest.App
	admin *apptest.Client
	acme  identity.Org
}

func setUp(t *testing.T, opts ...apptest.Option) *federationEnv {
	t.Helper()
	e := &federationEnv{up: startUpstream(t), down: apptest.Start(t, opts...)}
	e.admin = e.down.Client(t, e.down.AdminToken(t))
	e.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	var err error
	if e.acme, err = e.down.IDs.Org(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	return e
}

// addProvider registers a client at the upstream and adds it to acme.
func (e *federationEnv) addProvider(t *testing.T, req federation.CreateProviderRequest) federation.ProviderJSON {
	t.Helper()
	cl := e.up.registerClient(t, "Downstream "+req.Name, e.down.URL+federation.CallbackPath)
	if req.Issuer == "" {
		req.Issuer = e.up.URL
	}
	req.ClientID, req.ClientSecret = cl.ClientID, cl.ClientSecret
	var p federation.ProviderJSON
	e.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/idps", req).Decode(t, &p)
	return p
}

// downUser creates a downstream user with a verified e-mail address.
func (e *federationEnv) downUser(t *testing.T, name, email string, role authz.Role) identity.User {
	t.Helper()
	ctx := context.Background()
	u, err := e.down.IDs.CreateUser(ctx, identity.NewUser{Username: name, Email: email, EmailVerified: true, Password: apptest.UserPassword})
	if err != nil {
		t.Fatal(err)
	}
	if role != authz.NoRole {
		if err := e.down.IDs.SetMember(ctx, e.acme.ID, u.ID, role); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// state is what must stay unchanged by a refused sign-in.
type state struct {
	Users, Links, Creates int
}

func (e *federationEnv) state(t *testing.T) state {
	t.Helper()
	us, err := e.down.IDs.ListUsers(context.Background(), "", 500)
	if err != nil {
		t.Fatal(err)
	}
	return state{Users: len(us), Links: len(auditEntries(t, e.down, "federation.link", "")),
		Creates: len(auditEntries(t, e.down, "user.create", ""))}
}

// refused checks that a sign-in ended on the sign-in page with an error
// containing want, signed nobody in and changed nothing.
func (e *federationEnv) refused(t *testing.T, b *browser, p page, before state, want string) {
	t.Helper()
	if p.URL.Host != mustURL(t, e.down.URL).Host || p.URL.Path == "/" || p.Status < 400 {
		t.Errorf("refused sign-in ended at %s with %d, want an error page downstream", p.URL, p.Status)
	}
	if msg := pageError(p); !strings.Contains(msg, want) {
		t.Errorf("error shown = %q, want it to contain %q", msg, want)
	}
	if !strings.Contains(p.Body, `id="login-form"`) {
		t.Errorf("the error is not shown on the sign-in page: %.300s", p.Body)
	}
	if me, ok := b.me(e.down); ok {
		t.Errorf("refused sign-in left the browser signed in as %s", me.Username)
	}
	if diff := cmp.Diff(before, e.state(t)); diff != "" {
		t.Errorf("refused sign-in changed users or links (-before +after):\n%s", diff)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signIn runs a whole sign-in through a provider and returns where the
// browser lands downstream.
func (e *federationEnv) signIn(t *testing.T, b *browser, label, user, totpSecret string) page {
	t.Helper()
	form := b.startSignIn(e.down, label)
	cb := b.upstreamSignIn(form, user, totpSecret)
	return b.visit(cb.String())
}

// lastLogin returns the last successful sign-in audited for a user.
func lastLogin(t *testing.T, a *apptest.App, username string) audit.Entry {
	t.Helper()
	for _, e := range auditEntries(t, a, "user.login", audit.Success) {
		if e.ActorName == username {
			return e
		}
	}
	t.Fatalf("no successful sign-in of %s audited", username)
	return audit.Entry{}
}

func amrOf(e audit.Entry) []string {
	var out []string
	list, _ := e.Details["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestFederation_UpstreamRampart signs in to a Rampart (on SQLite and on
// PostgreSQL) through another Rampart process acting as the org's
// upstream OpenID provider.
func TestFederation_UpstreamRampart(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testUpstreamRampart(t, setUp(t, apptest.WithStore(b.URL(t)))) })
	}
}

func testUpstreamRampart(t *testing.T, e *federationEnv) {
	ctx := context.Background()
	corp := e.addProvider(t, federation.CreateProviderRequest{Name: "corp", Label: "Corp SSO", CreateUsers: true, MatchEmail: true, Role: "developer"})
	e.addProvider(t, federation.CreateProviderRequest{Name: "strict", Label: "Strict SSO"})
	if corp.CallbackURL != e.down.URL+federation.CallbackPath || !corp.HasSecret {
		t.Fatalf("provider = %+v", corp)
	}

	t.Run("first sign-in creates the user", func(t *testing.T) {
		e.up.createUser(t, "ada", "Ada@Corp.test", "Ada Lovelace")
		b := newBrowser(t)
		if p := e.signIn(t, b, "Corp SSO (acme)", "ada", ""); p.URL.Path != "/" || p.Status != http.StatusOK {
			t.Fatalf("landed at %s (%d): %.300s", p.URL, p.Status, p.Body)
		}
		me, ok := b.me(e.down)
		if !ok {
			t.Fatal("not signed in downstream")
		}
		want := httpapi.Me{User: httpapi.User{Username: "ada", Email: "ada@corp.test", DisplayName: "Ada Lovelace", Kind: "human"},
			Credential: "session", Orgs: []httpapi.OrgRole{{Org: "acme", Role: "developer"}}}
		me.CreatedAt, me.MFA = time.Time{}, httpapi.MFAStatus{}
		if diff := cmp.Diff(want, me); diff != "" {
			t.Errorf("signed in as (-want +got):\n%s", diff)
		}
		u, err := e.down.IDs.UserByName(ctx, "ada")
		if err != nil {
			t.Fatal(err)
		}
		if !u.EmailVerified || u.HasPassword {
			t.Errorf("created user: email verified %v, has password %v; want verified, no password", u.EmailVerified, u.HasPassword)
		}
		links, err := e.down.Federation.Links(ctx, u.ID)
		if err != nil || len(links) != 1 || links[0].Issuer != e.up.URL || links[0].Subject == "" {
			t.Errorf("links = %+v, %v", links, err)
		}
		login := lastLogin(t, e.down, "ada")
		if login.Details["via"] != "web:idp:corp" || !slices.Equal(amrOf(login), []string{"fed"}) {
			t.Errorf("audited sign-in: %v", login.Details)
		}
		cr := auditEntries(t, e.down, "user.create", audit.Success)
		if len(cr) == 0 || cr[0].TargetName != "ada" || cr[0].Details["via"] != "idp:corp" {
			t.Errorf("user.create audit = %+v", cr)
		}
		if ls := auditEntries(t, e.down, "federation.link", ""); len(ls) != 1 || ls[0].Details["method"] != "create" {
			t.Errorf("federation.link audit = %+v", ls)
		}
	})

	t.Run("second sign-in reuses the link", func(t *testing.T) {
		before := e.state(t)
		b := newBrowser(t)
		e.signIn(t, b, "Corp SSO (acme)", "ada", "")
		if me, ok := b.me(e.down); !ok || me.Username != "ada" {
			t.Fatalf("signed in as %+v (%v), want ada", me, ok)
		}
		if diff := cmp.Diff(before, e.state(t)); diff != "" {
			t.Errorf("second sign-in created something (-before +after):\n%s", diff)
		}
	})

	t.Run("user name taken downstream", func(t *testing.T) {
		e.downUser(t, "bob", "", authz.NoRole)
		e.up.createUser(t, "bob", "bob@corp.test", "")
		b := newBrowser(t)
		e.signIn(t, b, "Corp SSO (acme)", "bob", "")
		if me, ok := b.me(e.down); !ok || me.Username != "bob-2" || me.Email != "bob@corp.test" {
			t.Fatalf("signed in as %+v (%v), want a new user bob-2", me, ok)
		}
	})

	t.Run("member matched by verified e-mail", func(t *testing.T) {
		carol := e.downUser(t, "carol-r", "carol@corp.test", authz.Reader)
		e.up.createUser(t, "carol", "carol@corp.test", "")
		before := e.state(t)
		b := newBrowser(t)
		e.signIn(t, b, "Corp SSO (acme)", "carol", "")
		me, ok := b.me(e.down)
		if !ok || me.Username != "carol-r" {
			t.Fatalf("signed in as %+v (%v), want carol-r", me, ok)
		}
		if diff := cmp.Diff([]httpapi.OrgRole{{Org: "acme", Role: "reader"}}, me.Orgs); diff != "" {
			t.Errorf("an existing member keeps her role (-want +got):\n%s", diff)
		}
		after := e.state(t)
		if after.Users != before.Users || after.Links != before.Links+1 {
			t.Errorf("matching: users %d→%d links %d→%d, want no new user and one link", before.Users, after.Users, before.Links, after.Links)
		}
		if links, _ := e.down.Federation.Links(ctx, carol.ID); len(links) != 1 {
			t.Errorf("carol-r has %d links", len(links))
		}
	})

	t.Run("matching by e-mail not allowed", func(t *testing.T) {
		e.downUser(t, "dave-r", "dave@corp.test", authz.Reader)
		e.up.createUser(t, "dave", "dave@corp.test", "")
		before := e.state(t)
		b := newBrowser(t)
		p := e.signIn(t, b, "Strict SSO (acme)", "dave", "")
		e.refused(t, b, p, before, "exists but is not linked to Strict SSO")
	})

	t.Run("e-mail of someone outside the org", func(t *testing.T) {
		e.downUser(t, "erin-r", "erin@corp.test", authz.NoRole)
		e.up.createUser(t, "erin", "erin@corp.test", "")
		before := e.state(t)
		b := newBrowser(t)
		p := e.signIn(t, b, "Corp SSO (acme)", "erin", "")
		e.refused(t, b, p, before, "is not a member of acme")
	})

	t.Run("provider creates no users", func(t *testing.T) {
		e.up.createUser(t, "heidi", "heidi@corp.test", "")
		before := e.state(t)
		b := newBrowser(t)
		p := e.signIn(t, b, "Strict SSO (acme)", "heidi", "")
		e.refused(t, b, p, before, "does not create accounts")
		if refusals := auditEntries(t, e.down, "user.login", audit.Failure); len(refusals) == 0 || refusals[0].Details["via"] != "idp:strict" {
			t.Errorf("refusal audit = %+v", refusals)
		}
	})

	t.Run("upstream second factor counts as MFA", func(t *testing.T) {
		e.up.createUser(t, "frank", "frank@corp.test", "")
		secret := e.up.enrolTOTP(t, "frank")
		b := newBrowser(t)
		if p := e.signIn(t, b, "Corp SSO (acme)", "frank", secret); p.URL.Path != "/" {
			t.Fatalf("landed at %s (%d), want signed in without a downstream second factor", p.URL, p.Status)
		}
		if me, ok := b.me(e.down); !ok || me.Username != "frank" {
			t.Fatalf("signed in as %+v (%v)", me, ok)
		}
		if amr := amrOf(lastLogin(t, e.down, "frank")); !slices.Equal(amr, []string{"fed", "mfa"}) {
			t.Errorf("amr = %v, want [fed mfa]", amr)
		}
		// The session satisfies an org that requires a second factor.
		e.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "vault"})
		mfa := true
		e.admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/orgs/vault", httpapi.UpdateOrgRequest{RequireMFA: &mfa})
		for _, name := range []string{"frank", "ada"} {
			e.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/vault/members/"+name, httpapi.RoleRequest{Role: "reader"})
		}
		req, _ := http.NewRequest("GET", e.down.URL+httpapi.Prefix+"/orgs/vault", nil)
		if p, _ := b.do(req); p.Status != http.StatusOK {
			t.Errorf("frank's upstream-MFA session reading an MFA org = %d: %s", p.Status, p.Body)
		}
		// Without an upstream second factor, the org's requirement holds
		// the sign-in at the enrolment of one.
		ada := newBrowser(t)
		if p := e.signIn(t, ada, "Corp SSO (acme)", "ada", ""); p.URL.Path != "/login/enrol" {
			t.Errorf("ada (no second factor anywhere, member of an MFA org) landed at %s, want /login/enrol", p.URL)
		}
		if _, ok := ada.me(e.down); ok {
			t.Error("ada is signed in without the second factor her org requires")
		}
	})

	t.Run("downstream second factor still asked", func(t *testing.T) {
		e.up.createUser(t, "grace", "grace@corp.test", "")
		e.signIn(t, newBrowser(t), "Corp SSO (acme)", "grace", "")
		grace, err := e.down.IDs.UserByName(ctx, "grace")
		if err != nil {
			t.Fatal(err)
		}
		en, err := e.down.IDs.BeginTOTP(ctx, grace.ID, "test")
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.GenerateCode(en.Secret, time.Now())
		if _, err := e.down.IDs.ConfirmTOTP(ctx, grace.ID, code); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p := e.signIn(t, b, "Corp SSO (acme)", "grace", "")
		if p.URL.Path != "/login/verify" {
			t.Fatalf("landed at %s (%d), want the downstream second-factor form", p.URL, p.Status)
		}
		if _, ok := b.me(e.down); ok {
			t.Fatal("signed in before the second factor")
		}
		code, _ = totp.GenerateCode(en.Secret, time.Now().Add(30*time.Second))
		if p := b.submit(p, "/login/verify", url.Values{"code": {code}}); p.URL.Path != "/" {
			t.Fatalf("after the code: %s (%d) %s", p.URL, p.Status, pageError(p))
		}
		if me, ok := b.me(e.down); !ok || me.Username != "grace" {
			t.Fatalf("signed in as %+v (%v)", me, ok)
		}
		login := lastLogin(t, e.down, "grace")
		if login.Details["via"] != "web:idp:corp" || !slices.Equal(amrOf(login), []string{"fed", "otp"}) {
			t.Errorf("audited sign-in %v", login.Details)
		}
	})

	t.Run("tampered state", func(t *testing.T) {
		before := e.state(t)
		b := newBrowser(t)
		cb := b.upstreamSignIn(b.startSignIn(e.down, "Corp SSO (acme)"), "bob", "")
		q := cb.Query()
		q.Set("state", strings.ToUpper(q.Get("state")))
		cb.RawQuery = q.Encode()
		e.refused(t, b, b.visit(cb.String()), before, "start again")
	})

	t.Run("replayed state", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.upstreamSignIn(b.startSignIn(e.down, "Corp SSO (acme)"), "bob", "")
		binding := b.cookie(e.down.URL+federation.CallbackPath, "rampart_idp")
		if binding == nil || binding.Value == "" {
			t.Fatalf("no state cookie: %+v", binding)
		}
		b.visit(cb.String())
		if _, ok := b.me(e.down); !ok {
			t.Fatal("first use of the callback did not sign in bob")
		}
		// Another browser, holding the same cookie, replays the callback.
		other := newBrowser(t)
		other.c.Jar.SetCookies(mustURL(t, e.down.URL+federation.CallbackPath), []*http.Cookie{{Name: binding.Name, Value: binding.Value, Path: "/login/idp/"}})
		e.refused(t, other, other.visit(cb.String()), e.state(t), "start again")
	})

	t.Run("callback in another browser", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.upstreamSignIn(b.startSignIn(e.down, "Corp SSO (acme)"), "bob", "")
		other := newBrowser(t)
		e.refused(t, other, other.visit(cb.String()), e.state(t), "not started in this browser")
	})

	t.Run("nonce of another sign-in", func(t *testing.T) {
		// An attacker rewrites the authorization request's nonce: the
		// upstream signs it into the ID token, which then answers no
		// sign-in of ours.
		before := e.state(t)
		b := newBrowser(t)
		_, authReq := b.visitUntil(e.down.URL+"/login/idp/acme/corp", func(u *url.URL) bool { return u.Path == "/oauth/authorize" })
		if authReq == nil {
			t.Fatal("not sent to the upstream's authorization endpoint")
		}
		q := authReq.Query()
		if q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
			t.Fatalf("authorization request lacks nonce, state or PKCE: %s", authReq)
		}
		q.Set("nonce", "attacker-nonce")
		authReq.RawQuery = q.Encode()
		cb := b.upstreamSignIn(b.visit(authReq.String()), "bob", "")
		e.refused(t, b, b.visit(cb.String()), before, "nonce mismatch")
	})

	t.Run("issuer that names another issuer", func(t *testing.T) {
		e.addProvider(t, federation.CreateProviderRequest{Name: "mixup", Label: "Mixup", CreateUsers: true,
			Issuer: strings.Replace(e.up.URL, "127.0.0.1", "localhost", 1)})
		before := e.state(t)
		b := newBrowser(t)
		e.refused(t, b, b.startSignIn(e.down, "Mixup (acme)"), before, "names the issuer")
	})

	t.Run("unreachable issuer", func(t *testing.T) {
		e.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/idps", federation.CreateProviderRequest{Name: "gone",
			Label: "Gone", Issuer: "http://127.0.0.1:" + freePort(t), ClientID: "x", CreateUsers: true})
		before := e.state(t)
		b := newBrowser(t)
		p := b.startSignIn(e.down, "Gone (acme)")
		e.refused(t, b, p, before, "cannot reach the identity provider")
		if p.Status != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want 503", p.Status)
		}
	})

	t.Run("disabled user", func(t *testing.T) {
		disabled := true
		e.admin.Must(http.StatusOK, "PATCH", httpapi.Prefix+"/users/ada", httpapi.UpdateUserRequest{Disabled: &disabled})
		before := e.state(t)
		b := newBrowser(t)
		e.refused(t, b, e.signIn(t, b, "Corp SSO (acme)", "ada", ""), before, "disabled")
		refusal := auditEntries(t, e.down, "user.login", audit.Failure)[0]
		if refusal.TargetName != "ada" || refusal.Details["via"] != "idp:corp" {
			t.Errorf("refusal audit = %+v", refusal)
		}
	})

	t.Run("removed provider", func(t *testing.T) {
		b := newBrowser(t)
		form := b.startSignIn(e.down, "Strict SSO (acme)")
		e.admin.Must(http.StatusNoContent, "DELETE", httpapi.Prefix+"/orgs/acme/idps/strict", nil)
		before := e.state(t)
		cb := b.upstreamSignIn(form, "dave", "")
		e.refused(t, b, b.visit(cb.String()), before, "start again")
		if login := b.visit(e.down.URL + "/login"); strings.Contains(login.Body, "Strict SSO") {
			t.Error("the sign-in page still offers the removed provider")
		}
	})
}
