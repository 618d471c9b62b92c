package vault_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

// world is a running Rampart with an org acme, a project web, and tokens.
type world struct {
	a     *apptest.App
	admin *apptest.Client
}

func newWorld(t *testing.T, opts ...apptest.Option) *world {
	t.Helper()
	a := apptest.Start(t, opts...)
	w := &world{a: a, admin: a.Client(t, a.AdminToken(t))}
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", httpapi.CreateProjectRequest{Name: "web"})
	return w
}

// token makes a token of user (a fresh one with the given scopes).
func (w *world) token(t *testing.T, login string, scopes ...string) string {
	t.Helper()
	var ct httpapi.CreatedToken
	w.a.Client(t, login).Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens",
		map[string]any{"name": "t-" + strings.Join(scopes, "-"), "scopes": scopes}).Decode(t, &ct)
	return ct.Secret
}

func (w *world) vaultClient(t *testing.T, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = w.a.URL
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func eachStore(t *testing.T, fn func(t *testing.T, opt apptest.Option)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, apptest.WithStore(b.URL(t))) })
	}
}

// TestKV_OfficialClient drives the Vault-compatible API with HashiCorp's
// own Go client, as External Secrets Operator and Vault Agent do.
func TestKV_OfficialClient(t *testing.T) {
	eachStore(t, func(t *testing.T, opt apptest.Option) {
		ctx := context.Background()
		w := newWorld(t, opt)
		adminLogin := w.a.AdminToken(t)
		rw := w.vaultClient(t, w.token(t, adminLogin, "vault:read", "vault:write"))
		kv := rw.KVv2("secret")

		// Writes need no policy (maintainers may write what they may not read)...
		s1, err := kv.Put(ctx, "acme/web/prod/db", map[string]any{"username": "app", "password": "s3cr3t-one"})
		if err != nil {
			t.Fatal(err)
		}
		if s1.VersionMetadata.Version != 1 {
			t.Fatalf("first put is version %d", s1.VersionMetadata.Version)
		}
		// ... reads do: default deny, in Vault's words.
		_, err = kv.Get(ctx, "acme/web/prod/db")
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || !slices.Contains(re.Errors, "permission denied") {
			t.Fatalf("read without a policy: %v", err)
		}
		w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/vault/policies/admins", vault.PutPolicyRequest{
			Secrets: []string{"*", "*/*", "*/*/*"}, Subjects: []string{"user:admin"}})

		got, err := kv.Get(ctx, "acme/web/prod/db")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(map[string]any{"username": "app", "password": "s3cr3t-one"}, got.Data); d != "" {
			t.Errorf("data (-want +got):\n%s", d)
		}
		if _, err := kv.Put(ctx, "acme/web/prod/db", map[string]any{"username": "app", "password": "s3cr3t-two"}); err != nil {
			t.Fatal(err)
		}
		v1, err := kv.GetVersion(ctx, "acme/web/prod/db", 1)
		if err != nil || v1.Data["password"] != "s3cr3t-one" || v1.VersionMetadata.Version != 1 {
			t.Fatalf("version 1: %+v %v", v1, err)
		}

		// Check-and-set.
		if _, err := kv.Put(ctx, "acme/web/prod/db", map[string]any{"x": "y"}, api.WithCheckAndSet(1)); err == nil {
			t.Fatal("a stale check-and-set write succeeded")
		}
		if _, err := kv.Put(ctx, "acme/web/prod/db", map[string]any{"password": "s3cr3t-three"}, api.WithCheckAndSet(2)); err != nil {
			t.Fatalf("check-and-set write: %v", err)
		}

		// Metadata and versions.
		md, err := kv.GetMetadata(ctx, "acme/web/prod/db")
		if err != nil {
			t.Fatal(err)
		}
		if md.CurrentVersion != 3 || md.OldestVersion != 1 || len(md.Versions) != 3 || md.CreatedTime.IsZero() {
			t.Fatalf("metadata = %+v", md)
		}
		vs, err := kv.GetVersionsAsList(ctx, "acme/web/prod/db")
		if err != nil || len(vs) != 3 {
			t.Fatalf("versions = %+v, %v", vs, err)
		}

		// Delete the latest, read it (deleted), undelete, destroy.
		if err := kv.Delete(ctx, "acme/web/prod/db"); err != nil {
			t.Fatal(err)
		}
		if s, err := kv.Get(ctx, "acme/web/prod/db"); err == nil && s.Data != nil {
			t.Fatalf("deleted version read: %+v", s.Data)
		} else if err == nil && (s.VersionMetadata == nil || s.VersionMetadata.DeletionTime.IsZero()) {
			t.Fatalf("deleted version without deletion time: %+v", s.VersionMetadata)
		}
		if err := kv.Undelete(ctx, "acme/web/prod/db", []int{3}); err != nil {
			t.Fatal(err)
		}
		if s, err := kv.Get(ctx, "acme/web/prod/db"); err != nil || s.Data["password"] != "s3cr3t-three" {
			t.Fatalf("after undelete: %+v %v", s, err)
		}
		if err := kv.Destroy(ctx, "acme/web/prod/db", []int{1}); err != nil {
			t.Fatal(err)
		}
		if s, err := kv.GetVersion(ctx, "acme/web/prod/db", 1); err == nil && s.Data != nil {
			t.Fatalf("destroyed version read: %+v", s.Data)
		}

		// Listing walks org → project → environment.
		if _, err := kv.Put(ctx, "acme/web/API_KEY", map[string]any{"value": "api-key-plain"}); err != nil {
			t.Fatal(err)
		}
		for path, want := range map[string][]any{
			"secret/metadata/acme/web":      {"API_KEY", "prod/"},
			"secret/metadata/acme/web/prod": {"db"},
			"secret/metadata/acme":          {"web/"},
		} {
			l, err := rw.Logical().ListWithContext(ctx, path)
			if err != nil || l == nil {
				t.Fatalf("list %s: %v", path, err)
			}
			if d := cmp.Diff(want, l.Data["keys"]); d != "" {
				t.Errorf("list %s (-want +got):\n%s", path, d)
			}
		}

		// {"value": …} is stored raw: the REST API and CLI show it as is.
		var rev vault.RevealResponse
		w.admin.Must(http.StatusOK, "POST", httpapi.Prefix+"/orgs/acme/projects/web/secrets/API_KEY/reveal", "{}").Decode(t, &rev)
		if rev.Value != "api-key-plain" || rev.Format != "raw" {
			t.Fatalf("reveal = %+v", rev)
		}

		// Token lookup, as clients do to check their token.
		self, err := rw.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil || self.Data["display_name"] != "rampart-admin" {
			t.Fatalf("lookup-self: %+v %v", self, err)
		}

		// Tokens without the scope, bad tokens and no token are refused.
		readOnly := w.vaultClient(t, w.token(t, adminLogin, "vault:read"))
		if _, err := readOnly.KVv2("secret").Put(ctx, "acme/web/x", map[string]any{"a": "b"}); !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("write with a read-only token: %v", err)
		}
		if s, err := readOnly.KVv2("secret").Get(ctx, "acme/web/API_KEY"); err != nil || s.Data["value"] != "api-key-plain" {
			t.Errorf("read with vault:read: %+v %v", s, err)
		}
		noScope := w.vaultClient(t, w.token(t, adminLogin, "org:read"))
		if _, err := noScope.KVv2("secret").Get(ctx, "acme/web/API_KEY"); !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("read without vault:read: %v", err)
		}
		for _, tok := range []string{"rpt_not-a-real-token", ""} {
			c := w.vaultClient(t, tok)
			c.ClearToken()
			if tok != "" {
				c.SetToken(tok)
			}
			if _, err := c.KVv2("secret").Get(ctx, "acme/web/API_KEY"); !errors.As(err, &re) || re.StatusCode != 403 {
				t.Errorf("token %q: %v", tok, err)
			}
		}

		// Every KV read is in the audit log, with its channel.
		entries := w.a.AuditSince(t, 0)
		kvReads := 0
		for _, e := range entries {
			if e.Action == "vault.secret.read" && e.Details["via"] == "kv" {
				kvReads++
			}
			for _, secret := range []string{"s3cr3t-one", "s3cr3t-two", "api-key-plain"} {
				if strings.Contains(e.TargetName+toJSON(e.Details), secret) {
					t.Errorf("audit entry %d holds a secret value", e.Seq)
				}
			}
		}
		if kvReads != 7 { // the refusals by scope or token never reach the vault
			t.Errorf("%d KV reads audited, want 7 (denied, read, version 1, deleted, undeleted, destroyed, read-only token)", kvReads)
		}
	})
}

// TestKV_BadRequests: malformed paths and bodies get Vault-style errors and
// change nothing.
func TestKV_BadRequests(t *testing.T) {
	w := newWorld(t)
	tok := w.token(t, w.a.AdminToken(t), "vault:read", "vault:write")
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"bad ref", "GET", "/v1/secret/data/acme/a/b/c/d", "", 400},
		{"upper-case org", "GET", "/v1/secret/data/ACME/x", "", 400},
		{"unknown org", "GET", "/v1/secret/data/nope/x", "", 403}, // as Vault: names cannot be probed
		{"unknown mount", "GET", "/v1/other/data/acme/x", "", 404},
		{"unsupported op", "PATCH", "/v1/secret/data/acme/x", `{"data":{}}`, 405},
		{"bad version", "GET", "/v1/secret/data/acme/x?version=abc", "", 400},
		{"no data", "PUT", "/v1/secret/data/acme/x", `{"options":{}}`, 400},
		{"not JSON", "PUT", "/v1/secret/data/acme/x", `{"data":`, 400},
		{"too large", "PUT", "/v1/secret/data/acme/x", `{"data":{"v":"` + strings.Repeat("a", 2<<20) + `"}}`, 413},
		{"value too large", "PUT", "/v1/secret/data/acme/x", `{"data":{"v":"` + strings.Repeat("a", vault.MaxValue) + `"}}`, 413},
		{"no versions", "POST", "/v1/secret/delete/acme/x", `{"versions":[]}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := w.a.Mark(t)
			req, err := http.NewRequest(tt.method, w.a.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Vault-Token", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Errors []string `json:"errors"`
			}
			if err := jsonDecode(resp.Body, &body); err != nil {
				t.Fatalf("body is not Vault's error JSON: %v", err)
			}
			if resp.StatusCode != tt.status || body.Errors == nil {
				t.Fatalf("%s %s = %d %+v, want %d with errors", tt.method, tt.path, resp.StatusCode, body, tt.status)
			}
			mark.Unchanged(t)
		})
	}
}
