package oidcop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"

	"github.com/google/go-cmp/cmp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

type fixture struct {
	p     *Provider
	s     *storage
	clock *fakeclock.Clock
	user  identity.User
	ctx   context.Context
}

// newFixture builds a provider on db with one user and the CLI client.
func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := t.Context()
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	sealer, err := keyring.FromKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ids, err := identity.New(identity.Deps{DB: db, Audit: audit.New(db, clk.Now), Sealer: sealer, Logger: log, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Deps{IDs: ids, Logger: log, Issuer: "https://rampart.example", DevicePollInterval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EnsureCLIClient(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := ids.CreateUser(ctx, identity.NewUser{Username: "alice", Email: "alice@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{p: p, s: p.storage, clock: clk, user: u, ctx: ctx}
}

func (f *fixture) session(amr ...string) identity.Session {
	return identity.Session{State: identity.SessionActive, UserID: f.user.ID, AMR: amr, AuthTime: f.clock.Now().Add(-time.Minute)}
}

var migrations = []store.Migrations{audit.Migrations, identity.Migrations, Migrations}

func TestStorage_SigningKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		k1, err := f.s.SigningKey(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := f.s.SigningKey(f.ctx); again.ID() != k1.ID() {
			t.Fatalf("key changed without rotation: %s then %s", k1.ID(), again.ID())
		}
		f.clock.Advance(DefaultKeyRotation + time.Second)
		k2, err := f.s.SigningKey(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if k2.ID() == k1.ID() {
			t.Fatal("the key was not rotated on schedule")
		}
		ids := func() []string {
			ks, err := f.s.KeySet(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, k := range ks {
				out = append(out, k.ID())
			}
			return out
		}
		if diff := cmp.Diff([]string{k2.ID(), k1.ID()}, ids()); diff != "" {
			t.Errorf("key set right after rotation (-want +got):\n%s", diff)
		}
		// Once every ID token signed with k1 has expired, it leaves.
		f.clock.Advance(DefaultIDTokenLifetime + keyOverlap + time.Second)
		if diff := cmp.Diff([]string{k2.ID()}, ids()); diff != "" {
			t.Errorf("key set after the overlap (-want +got):\n%s", diff)
		}
		if _, err := f.p.Purge(f.ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(f.ctx, "SELECT COUNT(*) FROM oidc_signing_keys").Scan(&n); err != nil || n != 1 {
			t.Errorf("keys after purge = %d (%v), want 1", n, err)
		}
		k3, err := f.p.RotateKeys(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := f.p.Keys(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != 2 || ks[0].ID != k3.ID || !ks[0].Current || ks[1].Current || ks[1].RetireAfter.IsZero() {
			t.Errorf("keys after manual rotation = %+v", ks)
		}
	}, migrations...)
}

func (f *fixture) accessToken(t *testing.T, id string) string {
	t.Helper()
	raw, err := f.p.crypto.Encrypt(id + ":" + strconv.FormatInt(f.user.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestStorage_RefreshRotationAndReuse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		first := &op.DeviceAuthorizationState{ClientID: CLIClientID, Subject: strconv.FormatInt(f.user.ID, 10),
			Scopes: []string{"openid", "admin", "offline_access"}, AMR: []string{"pwd"}}
		a1, r1, _, err := f.s.CreateAccessAndRefreshTokens(f.ctx, first, "")
		if err != nil {
			t.Fatal(err)
		}
		uid, scopes, err := f.p.VerifyAccessToken(f.ctx, f.accessToken(t, a1))
		if err != nil || uid != f.user.ID || !cmp.Equal(scopes, []authz.Scope{authz.ScopeAdmin}) {
			t.Fatalf("verify = %d %v %v", uid, scopes, err)
		}
		req, err := f.s.TokenRequestByRefreshToken(f.ctx, r1)
		if err != nil {
			t.Fatal(err)
		}
		if req.GetSubject() != first.Subject || !cmp.Equal(req.GetAMR(), []string{"pwd"}) {
			t.Fatalf("refresh request = %+v", req)
		}
		req.SetCurrentScopes([]string{"openid"}) // a refresh may narrow the access token
		a2, r2, _, err := f.s.CreateAccessAndRefreshTokens(f.ctx, req, r1)
		if err != nil {
			t.Fatal(err)
		}
		if _, scopes, err := f.p.VerifyAccessToken(f.ctx, f.accessToken(t, a2)); err != nil || len(scopes) != 0 {
			t.Fatalf("narrowed token scopes = %v %v", scopes, err)
		}
		if req2, err := f.s.TokenRequestByRefreshToken(f.ctx, r2); err != nil || !cmp.Equal(req2.GetScopes(), first.Scopes) {
			t.Fatalf("the new refresh token lost the grant's scopes: %v %v", req2, err)
		}
		// Rotating r1 again fails, and presenting it revokes the grant.
		if _, _, _, err := f.s.CreateAccessAndRefreshTokens(f.ctx, req, r1); err == nil {
			t.Fatal("a used refresh token rotated twice")
		}
		if _, err := f.s.TokenRequestByRefreshToken(f.ctx, r1); err == nil {
			t.Fatal("a used refresh token was accepted")
		}
		if _, err := f.s.TokenRequestByRefreshToken(f.ctx, r2); err == nil {
			t.Fatal("reuse did not revoke the newer refresh token")
		}
		if _, _, err := f.p.VerifyAccessToken(f.ctx, f.accessToken(t, a2)); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("reuse did not revoke the access token: %v", err)
		}
		es, err := f.p.audit.List(f.ctx, audit.Filter{Action: "oidc.token.refresh", Outcome: audit.Failure, Limit: 10})
		if err != nil || len(es) != 1 {
			t.Fatalf("reuse audit = %v %v", es, err)
		}
	}, migrations...)
}

func TestStorage_AccessTokenExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		req := &op.DeviceAuthorizationState{ClientID: CLIClientID, Subject: strconv.FormatInt(f.user.ID, 10), Scopes: []string{"admin"}}
		id, exp, err := f.s.CreateAccessToken(f.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(f.clock.Now().Add(DefaultAccessTokenLifetime)) {
			t.Errorf("expiry = %v", exp)
		}
		raw := f.accessToken(t, id)
		if _, _, err := f.p.VerifyAccessToken(f.ctx, raw); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(DefaultAccessTokenLifetime)
		if _, _, err := f.p.VerifyAccessToken(f.ctx, raw); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("expired token: %v", err)
		}
		// A token naming another subject than its own is refused.
		forged, _ := f.p.crypto.Encrypt(id + ":999")
		if _, _, err := f.p.VerifyAccessToken(f.ctx, forged); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("forged subject: %v", err)
		}
	}, migrations...)
}

func TestStorage_DeviceAuthorization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		err := f.s.StoreDeviceAuthorization(f.ctx, CLIClientID, "device-code", "BCDF-GHJK", f.clock.Now().Add(10*time.Minute),
			[]string{"openid", "admin", "repo:write", "offline_access"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.s.GetDeviceAuthorizatonState(f.ctx, CLIClientID, "device-code")
		if err != nil || st.Done || st.Denied {
			t.Fatalf("first poll = %+v %v", st, err)
		}
		if _, err := f.s.GetDeviceAuthorizatonState(f.ctx, CLIClientID, "device-code"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("fast poll = %v, want slow_down (DeadlineExceeded)", err)
		}
		if _, err := f.s.GetDeviceAuthorizatonState(f.ctx, "other-client", "device-code"); err == nil {
			t.Fatal("another client polled this device code")
		}
		d, err := f.p.PendingDevice(f.ctx, "bcdf ghjk")
		if err != nil {
			t.Fatal(err)
		}
		// repo:write is not a scope rampart-cli may have.
		if diff := cmp.Diff([]string{"openid", "admin", "offline_access"}, d.Scopes); diff != "" {
			t.Errorf("scopes (-want +got):\n%s", diff)
		}
		if err := f.p.DecideDevice(f.ctx, "BCDFGHJK", true, f.user, f.session("pwd", "hwk")); err != nil {
			t.Fatal(err)
		}
		if err := f.p.DecideDevice(f.ctx, "BCDF-GHJK", false, f.user, f.session("pwd")); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("second decision = %v", err)
		}
		f.clock.Advance(5 * time.Second)
		st, err = f.s.GetDeviceAuthorizatonState(f.ctx, CLIClientID, "device-code")
		if err != nil || !st.Done || st.Subject != strconv.FormatInt(f.user.ID, 10) || !cmp.Equal(st.AMR, []string{"pwd", "hwk", "mfa"}) {
			t.Fatalf("approved state = %+v %v", st, err)
		}
		if _, err := f.s.GetDeviceAuthorizatonState(f.ctx, CLIClientID, "device-code"); err == nil {
			t.Fatal("an approved device code was answered twice")
		}
	}, migrations...)
}

func TestStorage_CodeWorksOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c, _, err := f.p.CreateClient(f.ctx, NewClient{Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		issue := func() string {
			t.Helper()
			a, err := f.s.CreateAuthRequest(f.ctx, &oidc.AuthRequest{ClientID: c.ID, RedirectURI: "https://wiki.example/cb",
				ResponseType: oidc.ResponseTypeCode, Scopes: []string{"openid", "admin"}, State: "s", Nonce: "n"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := f.p.CompleteAuthRequest(f.ctx, a.GetID(), f.user, f.session("pwd")); err != nil {
				t.Fatal(err)
			}
			if err := f.p.CompleteAuthRequest(f.ctx, a.GetID(), f.user, f.session("pwd")); !apperr.Is(err, apperr.Conflict) {
				t.Fatalf("second completion = %v", err)
			}
			code, err := f.p.crypto.Encrypt(a.GetID())
			if err != nil {
				t.Fatal(err)
			}
			if err := f.s.SaveAuthCode(f.ctx, a.GetID(), code); err != nil {
				t.Fatal(err)
			}
			return code
		}
		code := issue()
		a, err := f.s.AuthRequestByCode(f.ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		// admin was not registered for the client: dropped.
		if !cmp.Equal(a.GetScopes(), []string{"openid"}) || a.GetSubject() != strconv.FormatInt(f.user.ID, 10) || a.GetNonce() != "n" {
			t.Errorf("auth request = %+v", a)
		}
		if _, err := f.s.AuthRequestByCode(f.ctx, code); err == nil {
			t.Fatal("a code worked twice")
		}
		late := issue()
		f.clock.Advance(codeLifetime + time.Second)
		if _, err := f.s.AuthRequestByCode(f.ctx, late); err == nil {
			t.Fatal("an expired code worked")
		}
	}, migrations...)
}

func TestStorage_ClientLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c, secret, err := f.p.CreateClient(f.ctx, NewClient{Name: "CI", GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"repo:read"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.AuthorizeClientIDSecret(f.ctx, c.ID, secret); err != nil {
			t.Fatalf("right secret: %v", err)
		}
		for _, bad := range []string{"", "rps_wrong", secret + "x"} {
			if err := f.s.AuthorizeClientIDSecret(f.ctx, c.ID, bad); err == nil {
				t.Errorf("secret %q accepted", bad)
			}
		}
		if err := f.s.AuthorizeClientIDSecret(f.ctx, CLIClientID, ""); err == nil {
			t.Error("public client authenticated with a secret")
		}
		var stored string
		if err := db.QueryRow(f.ctx, "SELECT secret_hash FROM oidc_clients WHERE id = ?", c.ID).Scan(&stored); err != nil || stored == secret {
			t.Fatalf("secret stored in clear (%v)", err)
		}
		req, err := f.s.ClientCredentialsTokenRequest(f.ctx, c.ID, []string{"repo:read", "admin", "openid"})
		if err != nil || !cmp.Equal(req.GetScopes(), []string{"repo:read"}) {
			t.Fatalf("client credentials scopes = %v %v", req, err)
		}
		id, _, err := f.s.CreateAccessToken(f.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.p.DeleteClient(f.ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.activeAccessToken(f.ctx, id, c.ID); err == nil {
			t.Fatal("a deleted client's token still works")
		}
		if err := f.p.DeleteClient(f.ctx, CLIClientID); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("deleting the built-in client = %v", err)
		}
		es, err := f.p.audit.List(f.ctx, audit.Filter{Action: "oidc.client.delete", Limit: 10})
		if err != nil || len(es) != 1 {
			t.Fatalf("delete audit = %v %v", es, err)
		}
	}, migrations...)
}
