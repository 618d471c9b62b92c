package identity_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

func TestTokens_CreateAndAuthenticate(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		raw, tok, err := e.ids.CreateToken(as(ctx, bob), bob.ID, identity.NewToken{Name: " ci ",
			Scopes: []authz.Scope{"repo:read", "org:read", "repo:read"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(raw, identity.TokenPrefix) || len(raw) != 50 {
			t.Fatalf("secret %q: want rpt_ + 46 characters", raw)
		}
		want := identity.Token{ID: tok.ID, UserID: bob.ID, Name: "ci", Kind: identity.TokenPersonal, Hint: raw[46:],
			Scopes: []authz.Scope{"org:read", "repo:read"}, CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(identity.DefaultTokenLifetime)}
		if diff := cmp.Diff(want, tok); diff != "" {
			t.Errorf("created token (-want +got):\n%s", diff)
		}

		// Only the SHA-256 of the secret is stored; no column holds it.
		sum := sha256.Sum256([]byte(raw))
		if n := e.count(t, "SELECT COUNT(*) FROM tokens WHERE hash = ?", hex.EncodeToString(sum[:])); n != 1 {
			t.Errorf("%d tokens stored under the secret's hash, want 1", n)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM tokens WHERE hash = ? OR name = ? OR hint = ? OR scopes = ?", raw, raw, raw, raw); n != 0 {
			t.Error("the secret is stored in clear")
		}
		if n := e.count(t, "SELECT COUNT(*) FROM audit_log WHERE details LIKE ?", "%"+raw[4:20]+"%"); n != 0 {
			t.Error("the secret is in the audit log")
		}

		e.clock.Advance(2 * time.Minute)
		u, got, err := e.ids.AuthenticateToken(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != bob.ID || got.ID != tok.ID || !got.LastUsedAt.Equal(e.clock.Now()) {
			t.Errorf("authenticated as %s with token %d last used %v", u.Username, got.ID, got.LastUsedAt)
		}
		sub, err := e.ids.Subject(ctx, u, got.Scopes, "token")
		if err != nil {
			t.Fatal(err)
		}
		if !sub.HasScope(authz.ScopeRepoRead) || sub.HasScope(authz.ScopeRepoWrite) || sub.HasScope(authz.ScopeAdmin) {
			t.Errorf("subject scopes %v", sub.Scopes)
		}

		ent := e.lastAudit(t)
		if ent.Action != "token.create" || ent.ActorName != "bob" || ent.TargetName != "ci" ||
			fmt.Sprint(ent.Details["scopes"]) != "[org:read repo:read]" {
			t.Errorf("audit entry %+v", ent)
		}
	})
}

func TestTokens_RejectedSecrets(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		raw, _, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "ci", Scopes: []authz.Scope{authz.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		flip := func(i int) string {
			c := byte('A')
			if raw[i] == 'A' {
				c = 'B'
			}
			return raw[:i] + string(c) + raw[i+1:]
		}
		for name, s := range map[string]string{
			"empty":        "",
			"no prefix":    raw[4:],
			"typo in body": flip(10),
			"typo in sum":  flip(49),
			"truncated":    raw[:49],
			"extended":     raw + "0",
			"other prefix": "rpx_" + raw[4:],
			"all zeros":    identity.TokenPrefix + strings.Repeat("0", 46),
		} {
			_, _, err := e.ids.AuthenticateToken(ctx, s)
			if apperr.KindOf(err) != apperr.Unauthenticated || apperr.Message(err) != "invalid, expired or revoked token" {
				t.Errorf("%s: err = %v", name, err)
			}
		}
	})
}

func TestTokens_Lifetime(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		scopes := []authz.Scope{authz.ScopeOrgRead}
		for _, tt := range []struct {
			life    time.Duration
			wantErr string
		}{
			{30 * time.Second, "at least a minute"},
			{-time.Hour, "at least a minute"},
			{identity.MaxTokenLifetime + time.Second, "at most 366 days"},
		} {
			_, _, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "x", Scopes: scopes, Lifetime: tt.life})
			if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("lifetime %v: err = %v, want %q", tt.life, err, tt.wantErr)
			}
		}
		raw, tok, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "max", Scopes: scopes, Lifetime: identity.MaxTokenLifetime})
		if err != nil {
			t.Fatal(err)
		}
		if !tok.ExpiresAt.Equal(e.clock.Now().Add(identity.MaxTokenLifetime)) {
			t.Errorf("expires at %v", tok.ExpiresAt)
		}
		short, _, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "short", Scopes: scopes, Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour - time.Second)
		if _, _, err := e.ids.AuthenticateToken(ctx, short); err != nil {
			t.Fatalf("a second before expiry: %v", err)
		}
		e.clock.Advance(time.Second)
		_, _, err = e.ids.AuthenticateToken(ctx, short)
		wantKind(t, err, apperr.Unauthenticated)
		if _, _, err := e.ids.AuthenticateToken(ctx, raw); err != nil {
			t.Fatalf("the long-lived token: %v", err)
		}
		ts, err := e.ids.Tokens(ctx, bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 2 || ts[0].Name != "short" || ts[0].Active(e.clock.Now()) || !ts[1].Active(e.clock.Now()) {
			t.Errorf("tokens %+v", ts)
		}
	})
}

func TestTokens_Scopes(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		for name, sc := range map[string][]authz.Scope{
			"none":    nil,
			"unknown": {"repo:read", "repo:delete"},
			"blank":   {" ", ","},
		} {
			_, _, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "x", Scopes: sc})
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "scopes" {
				t.Errorf("%s: err = %v", name, err)
			}
		}
		for name, nt := range map[string]identity.NewToken{
			"no name":      {Name: "  ", Scopes: []authz.Scope{"admin"}},
			"long name":    {Name: strings.Repeat("n", 101), Scopes: []authz.Scope{"admin"}},
			"control name": {Name: "ci\x1b[2J", Scopes: []authz.Scope{"admin"}},
		} {
			_, _, err := e.ids.CreateToken(ctx, bob.ID, nt)
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "name" {
				t.Errorf("%s: err = %v", name, err)
			}
		}
		if n := e.count(t, "SELECT COUNT(*) FROM tokens"); n != 0 {
			t.Errorf("%d tokens stored after refusals", n)
		}
	})
}

func TestTokens_Revoke(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob, carol := e.user(t, "bob"), e.user(t, "carol")
		raw, tok, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "ci", Scopes: []authz.Scope{"admin"}})
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, e.ids.RevokeToken(as(ctx, carol), carol.ID, tok.ID), apperr.NotFound)
		if _, _, err := e.ids.AuthenticateToken(ctx, raw); err != nil {
			t.Fatalf("token revoked by someone else: %v", err)
		}
		e.clock.Advance(time.Minute)
		if err := e.ids.RevokeToken(as(ctx, bob), bob.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.ids.AuthenticateToken(ctx, raw)
		wantKind(t, err, apperr.Unauthenticated)
		wantKind(t, e.ids.RevokeToken(ctx, bob.ID, tok.ID), apperr.Conflict)
		ts, err := e.ids.Tokens(ctx, bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 1 || !ts[0].RevokedAt.Equal(e.clock.Now()) || ts[0].Active(e.clock.Now()) {
			t.Errorf("tokens %+v", ts)
		}
		if ent := e.lastAudit(t); ent.Action != "token.revoke" || ent.ActorName != "bob" || ent.TargetID != fmt.Sprint(tok.ID) {
			t.Errorf("audit entry %+v", ent)
		}
	})
}

func TestTokens_PerUserCap(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		scopes := []authz.Scope{authz.ScopeOrgRead}
		// Fill up to one below the cap directly: 199 CreateToken calls
		// would only test the database.
		for i := range 199 {
			if _, err := e.db.Exec(ctx, `INSERT INTO tokens (user_id, name, kind, hint, hash, scopes, created_at)
				VALUES (?, ?, 'personal', 'xxxx', ?, 'org:read', 0)`, bob.ID, fmt.Sprint("t", i), fmt.Sprint("hash", i)); err != nil {
				t.Fatal(err)
			}
		}
		_, last, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "200th", Scopes: scopes})
		if err != nil {
			t.Fatalf("the 200th token: %v", err)
		}
		_, _, err = e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "201st", Scopes: scopes})
		if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "already has 200 tokens") {
			t.Fatalf("the 201st token: %v", err)
		}
		// Revoked tokens do not count.
		if err := e.ids.RevokeToken(ctx, bob.ID, last.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "after revoke", Scopes: scopes}); err != nil {
			t.Fatalf("after revoking one: %v", err)
		}
		// The cap is per user.
		carol := e.user(t, "carol")
		if _, _, err := e.ids.CreateToken(ctx, carol.ID, identity.NewToken{Name: "ci", Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTokens_DisabledOwner(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		raw, _, err := e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "ci", Scopes: []authz.Scope{"admin"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ids.SetDisabled(ctx, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		if ent := e.lastAudit(t); ent.Action != "user.disable" || ent.TargetName != "bob" {
			t.Errorf("audit entry %+v", ent)
		}
		_, _, err = e.ids.AuthenticateToken(ctx, raw)
		wantKind(t, err, apperr.Unauthenticated)
		_, _, err = e.ids.CreateToken(ctx, bob.ID, identity.NewToken{Name: "new", Scopes: []authz.Scope{"admin"}})
		if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "disabled") {
			t.Errorf("token for a disabled user: %v", err)
		}
		if err := e.ids.SetDisabled(ctx, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.ids.AuthenticateToken(ctx, raw); err != nil {
			t.Errorf("after re-enabling: %v", err)
		}
		if ent := e.lastAudit(t); ent.Action != "user.enable" {
			t.Errorf("audit entry %+v", ent)
		}
	})
}
