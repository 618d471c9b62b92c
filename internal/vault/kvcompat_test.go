package vault_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault"
)

// Compatibility with HashiCorp Vault's KV v2 API where it differed, each
// checked against a real Vault 1.19.0 dev server.

// kvWorld is a world whose admin holds a vault:read+vault:write token and
// a policy letting them read every acme secret.
func kvWorld(t *testing.T, opts ...apptest.Option) (*world, string) {
	t.Helper()
	w := newWorld(t, opts...)
	tok := w.token(t, w.a.AdminToken(t), "vault:read", "vault:write")
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/vault/policies/admins", vault.PutPolicyRequest{
		Secrets: []string{"*", "*/*", "*/*/*"}, Subjects: []string{"user:admin"}})
	return w, tok
}

// kvCall does one raw request with X-Vault-Token and returns its status
// and body.
func kvCall(t *testing.T, w *world, tok, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.a.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("X-Vault-Token", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// vaultBinary is the HashiCorp Vault binary tools/vaultserver/build.sh
// builds (RAMPART_TEST_VAULT_BIN overrides it).
func vaultBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("RAMPART_TEST_VAULT_BIN")
	if bin == "" {
		_, file, _, _ := runtime.Caller(0)
		bin = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "vault-v1.19.0", "vault")
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "a HashiCorp Vault binary at "+bin+" (run bash tools/vaultserver/build.sh)")
	}
	return bin
}

// TestKV_LookupSelfCarriesToken: lookup-self answers with the fields
// Vault 1.19 gives, data.id being the caller's own token (Vault Agent's
// token_file auto-auth does secret.Data["id"].(string) unchecked), in the
// usual envelope.
func TestKV_LookupSelfCarriesToken(t *testing.T) {
	w, tok := kvWorld(t)
	c := w.vaultClient(t, tok)
	s, err := c.Auth().Token().LookupSelfWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "accessor", "creation_time", "creation_ttl", "display_name", "entity_id", "expire_time",
		"explicit_max_ttl", "issue_time", "meta", "num_uses", "orphan", "path", "policies", "renewable", "ttl", "type"} {
		if _, ok := s.Data[k]; !ok {
			t.Errorf("lookup-self data has no %q", k)
		}
	}
	if id, _ := s.Data["id"].(string); id != tok {
		t.Errorf("data.id = %q, want the caller's token", id)
	}
	acc, _ := s.Data["accessor"].(string)
	if acc == "" || strings.Contains(acc, tok) || strings.Contains(tok, acc) {
		t.Errorf("data.accessor = %q: want a non-empty identifier that is not the token", acc)
	}
	// The same token gives the same accessor.
	if s2, err := c.Auth().Token().LookupSelfWithContext(t.Context()); err != nil || s2.Data["accessor"] != acc {
		t.Errorf("second lookup: accessor %v, err %v", s2.Data["accessor"], err)
	}
	// What Vault Agent's auth handler (command/agentproxyshared/auth) does.
	if _, err := s.Data["ttl"].(json.Number).Int64(); err != nil {
		t.Errorf("ttl %v: %v", s.Data["ttl"], err)
	}
	if _, ok := s.Data["renewable"].(bool); !ok {
		t.Errorf("renewable %v is not a boolean", s.Data["renewable"])
	}
	if ttl, _ := s.TokenTTL(); ttl <= 0 {
		t.Errorf("token TTL %v for a token that expires", ttl)
	}
	if pol, err := s.TokenPolicies(); err != nil || len(pol) != 2 {
		t.Errorf("policies %v %v, want the token's two scopes", pol, err)
	}
	if s.RequestID == "" {
		t.Errorf("no request_id: not Vault's envelope")
	}
	if it, _ := s.Data["issue_time"].(string); it == "" {
		t.Errorf("issue_time %v", s.Data["issue_time"])
	}
}

// TestKV_VaultAgentTokenFile runs the real Vault Agent (1.19.0) with the
// token_file auto-auth method — the auto-auth method a Rampart token can
// use — rendering a template that reads a Rampart secret.
func TestKV_VaultAgentTokenFile(t *testing.T) {
	bin := vaultBinary(t)
	w, tok := kvWorld(t)
	if st, body := kvCall(t, w, tok, "POST", "/v1/secret/data/acme/web/db", `{"data":{"password":"agent-p1"}}`); st != http.StatusOK {
		t.Fatalf("write: %d %s", st, body)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" { config = { token_file_path = %q } }
}
template_config { exit_on_retry_failure = true }
template {
  contents    = "{{ with secret \"secret/data/acme/web/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
exit_after_auth = true
`, w.a.URL, filepath.Join(dir, "token"), filepath.Join(dir, "out"))
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "agent", "-config", filepath.Join(dir, "agent.hcl"))
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	got, rerr := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil || rerr != nil || string(got) != "agent-p1" {
		t.Fatalf("vault agent rendered %q (%v); agent: %v\n%s", got, rerr, err, out)
	}
}

// kvDeleted reports whether version v of acme/web/db reads as deleted.
func kvDeleted(t *testing.T, w *world, tok string, v int) bool {
	t.Helper()
	st, body := kvCall(t, w, tok, "GET", fmt.Sprintf("/v1/secret/data/acme/web/db?version=%d", v), "")
	switch st {
	case http.StatusOK:
		return false
	case http.StatusNotFound:
		return true
	}
	t.Fatalf("read version %d: %d %s", v, st, body)
	return false
}

// TestKV_VersionsInEveryForm: delete, undelete and destroy take versions
// as Vault does — numbers, strings (what `vault kv delete -versions=1`
// sends), one number, or comma-separated in a string.
func TestKV_VersionsInEveryForm(t *testing.T) {
	w, tok := kvWorld(t)
	for i := range 3 {
		if st, body := kvCall(t, w, tok, "POST", "/v1/secret/data/acme/web/db", fmt.Sprintf(`{"data":{"password":"p%d"}}`, i+1)); st != http.StatusOK {
			t.Fatalf("write: %d %s", st, body)
		}
	}
	for _, tt := range []struct {
		versions string
		want     []int
	}{
		{`[1]`, []int{1}},
		{`["1"]`, []int{1}},
		{`["1", 2]`, []int{1, 2}},
		{`"1,2"`, []int{1, 2}},
		{`" 2 , 3 "`, []int{2, 3}},
		{`3`, []int{3}},
		{`"2"`, []int{2}},
	} {
		if st, body := kvCall(t, w, tok, "POST", "/v1/secret/delete/acme/web/db", `{"versions":`+tt.versions+`}`); st != http.StatusNoContent {
			t.Fatalf("delete %s: %d %s", tt.versions, st, body)
		}
		for _, v := range tt.want {
			if !kvDeleted(t, w, tok, v) {
				t.Errorf("delete %s left version %d readable", tt.versions, v)
			}
		}
		if st, body := kvCall(t, w, tok, "POST", "/v1/secret/undelete/acme/web/db", `{"versions":`+tt.versions+`}`); st != http.StatusNoContent {
			t.Fatalf("undelete %s: %d %s", tt.versions, st, body)
		}
		for v := 1; v <= 3; v++ {
			if kvDeleted(t, w, tok, v) {
				t.Errorf("undelete %s left version %d deleted", tt.versions, v)
			}
		}
	}
	if st, body := kvCall(t, w, tok, "POST", "/v1/secret/destroy/acme/web/db", `{"versions":["1"]}`); st != http.StatusNoContent || !kvDeleted(t, w, tok, 1) {
		t.Fatalf("destroy [\"1\"]: %d %s", st, body)
	}

	// What Vault refuses too changes nothing.
	mark := w.a.Mark(t)
	for _, b := range []string{`{"versions":["x"]}`, `{"versions":"1,x"}`, `{"versions":["1,2"]}`, `{"versions":[1.5]}`,
		`{"versions":[]}`, `{"versions":""}`, `{"versions":null}`, `{}`, `{"versions":{"a":1}}`} {
		st, body := kvCall(t, w, tok, "POST", "/v1/secret/delete/acme/web/db", b)
		if st != http.StatusBadRequest || !strings.Contains(body, `"errors"`) {
			t.Errorf("delete %s = %d %s, want 400 with errors", b, st, body)
		}
	}
	mark.Unchanged(t)
}

// TestKV_OpsOnMissingSecret: deleting, undeleting or destroying versions
// of a path with no secret, and deleting its data or metadata, answer 204
// as Vault does (they are idempotent) — authorised first, audited, and
// creating nothing.
func TestKV_OpsOnMissingSecret(t *testing.T) {
	w, tok := kvWorld(t)
	ops := []struct{ method, path, body, action string }{
		{"DELETE", "/v1/secret/data/acme/web/nope", "", "vault.secret.delete"},
		{"POST", "/v1/secret/delete/acme/web/nope", `{"versions":[1]}`, "vault.secret.delete"},
		{"PUT", "/v1/secret/undelete/acme/web/nope", `{"versions":["1"]}`, "vault.secret.undelete"},
		{"POST", "/v1/secret/destroy/acme/web/nope", `{"versions":"1,2"}`, "vault.secret.destroy"},
		{"DELETE", "/v1/secret/metadata/acme/web/nope", "", "vault.secret.delete_all"},
	}

	// Still authorised: a reader of acme and another org's admin are refused.
	carolLogin := w.a.CreateUser(t, w.admin, "carol")
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/carol", map[string]string{"role": "reader"})
	carol := w.token(t, carolLogin, "vault:read", "vault:write")
	bobLogin := w.a.CreateUser(t, w.admin, "bob")
	w.a.Client(t, bobLogin).Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "globex"})
	bob := w.token(t, bobLogin, "vault:read", "vault:write")
	readOnly := w.token(t, w.a.AdminToken(t), "vault:read")
	for _, who := range []struct{ name, tok string }{{"carol (reader)", carol}, {"bob (other org)", bob}, {"read-only token", readOnly}} {
		for _, op := range ops {
			if st, body := kvCall(t, w, who.tok, op.method, op.path, op.body); st != http.StatusForbidden && st != http.StatusNotFound {
				t.Errorf("%s: %s %s = %d %s, want refused", who.name, op.method, op.path, st, body)
			}
		}
	}

	head := w.a.AuditHead(t)
	for _, op := range ops {
		if st, body := kvCall(t, w, tok, op.method, op.path, op.body); st != http.StatusNoContent {
			t.Errorf("%s %s = %d %s, want 204 as Vault", op.method, op.path, st, body)
		}
	}
	entries := w.a.AuditSince(t, head)
	slices.SortFunc(entries, func(a, b audit.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(entries) != len(ops) {
		t.Fatalf("%d audit entries, want %d: %+v", len(entries), len(ops), entries)
	}
	for i, e := range entries {
		if e.Action != ops[i].action || e.TargetName != "acme/web/nope" || e.Outcome != "failure" || e.ActorName != "admin" {
			t.Errorf("audit entry %d = %s %s %s by %s, want %s acme/web/nope failure by admin", i, e.Action, e.TargetName, e.Outcome, e.ActorName, ops[i].action)
		}
	}
	if st, body := kvCall(t, w, tok, "GET", "/v1/secret/metadata/acme/web/nope", ""); st != http.StatusNotFound {
		t.Errorf("metadata after the operations: %d %s, want no secret", st, body)
	}
	// An unknown org is "permission denied", as in Vault, not "not
	// found": org names cannot be probed.
	if st, _ := kvCall(t, w, tok, "DELETE", "/v1/secret/data/nosuchorg/x", ""); st != http.StatusForbidden {
		t.Errorf("delete in an unknown org = %d, want 403", st)
	}
}

// TestKV_ReadDeletedVersionGivesMetadata: reading a deleted or destroyed
// version answers 404 with the version's metadata and null data, as Vault
// does, so the official client's KVv2.Get returns the metadata (deletion
// time, destroyed) instead of "secret not found". Never the value.
func TestKV_ReadDeletedVersionGivesMetadata(t *testing.T) {
	w, tok := kvWorld(t)
	ctx := t.Context()
	kv := w.vaultClient(t, tok).KVv2("secret")
	if _, err := kv.Put(ctx, "acme/web/db", map[string]any{"password": "deleted-value-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "acme/web/db", map[string]any{"password": "deleted-value-2"}); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "acme/web/db"); err != nil {
		t.Fatal(err)
	}
	s, err := kv.Get(ctx, "acme/web/db")
	if err != nil {
		t.Fatalf("KVv2.Get of a deleted version: %v (Vault: no error, the version's metadata)", err)
	}
	if s.Data != nil || s.VersionMetadata == nil || s.VersionMetadata.Version != 2 || s.VersionMetadata.DeletionTime.IsZero() ||
		s.VersionMetadata.Destroyed {
		t.Fatalf("deleted version: data %v, metadata %+v", s.Data, s.VersionMetadata)
	}
	if err := kv.Destroy(ctx, "acme/web/db", []int{1}); err != nil {
		t.Fatal(err)
	}
	s, err = kv.GetVersion(ctx, "acme/web/db", 1)
	if err != nil {
		t.Fatalf("KVv2.GetVersion of a destroyed version: %v", err)
	}
	if s.Data != nil || s.VersionMetadata == nil || s.VersionMetadata.Version != 1 || !s.VersionMetadata.Destroyed {
		t.Fatalf("destroyed version: data %v, metadata %+v", s.Data, s.VersionMetadata)
	}
	for _, v := range []string{"", "?version=1", "?version=2"} {
		st, body := kvCall(t, w, tok, "GET", "/v1/secret/data/acme/web/db"+v, "")
		if st != http.StatusNotFound || !strings.Contains(body, `"data":{"data":null,"metadata":{`) || strings.Contains(body, "deleted-value") {
			t.Errorf("read %s = %d %s", v, st, body)
		}
	}
	// A version that never was is a plain 404.
	if _, err := kv.GetVersion(ctx, "acme/web/db", 9); err == nil {
		t.Error("reading version 9 succeeded")
	}
	if st, body := kvCall(t, w, tok, "GET", "/v1/secret/data/acme/web/db?version=9", ""); st != http.StatusNotFound || strings.Contains(body, "metadata") {
		t.Errorf("version 9 = %d %s", st, body)
	}
}

// kvMeta is the data of a metadata read.
type kvMeta struct {
	CASRequired    bool              `json:"cas_required"`
	CurrentVersion int               `json:"current_version"`
	CustomMetadata map[string]string `json:"custom_metadata"`
	MaxVersions    int               `json:"max_versions"`
	Versions       map[string]any    `json:"versions"`
}

func kvReadMeta(t *testing.T, w *world, tok, path string) (int, kvMeta, string) {
	t.Helper()
	st, body := kvCall(t, w, tok, "GET", "/v1/secret/metadata/"+path, "")
	var env struct {
		Data kvMeta `json:"data"`
	}
	if st == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("metadata of %s: %v: %s", path, err, body)
		}
	}
	return st, env.Data, body
}

// TestKV_CustomMetadata: metadata writes (POST, PUT, PATCH) keep
// custom_metadata per secret, on both stores, and metadata and data reads
// return it (null when none); External Secrets Operator's PushSecret
// writes it before the secret's first version, as Vault allows.
func TestKV_CustomMetadata(t *testing.T) {
	eachStore(t, func(t *testing.T, opt apptest.Option) {
		w, tok := kvWorld(t, opt)
		ctx := t.Context()
		kv := w.vaultClient(t, tok).KVv2("secret")

		// A secret without custom metadata shows none (no made-up entry).
		if _, err := kv.Put(ctx, "acme/web/plain", map[string]any{"a": "b"}); err != nil {
			t.Fatal(err)
		}
		if st, md, body := kvReadMeta(t, w, tok, "acme/web/plain"); st != http.StatusOK || md.CustomMetadata != nil ||
			!strings.Contains(body, `"custom_metadata":null`) {
			t.Errorf("metadata of a secret without custom metadata: %d %s", st, body)
		}

		// ESO's PushSecret: metadata first, on a path with no secret yet...
		head := w.a.AuditHead(t)
		if st, body := kvCall(t, w, tok, "POST", "/v1/secret/metadata/acme/web/pushed", `{"custom_metadata":{"managed-by":"external-secrets"}}`); st != http.StatusNoContent {
			t.Fatalf("metadata write before data: %d %s", st, body)
		}
		st, md, body := kvReadMeta(t, w, tok, "acme/web/pushed")
		if st != http.StatusOK || md.CurrentVersion != 0 || len(md.Versions) != 0 || md.CustomMetadata["managed-by"] != "external-secrets" {
			t.Fatalf("metadata before data: %d %s", st, body)
		}
		if st, _ := kvCall(t, w, tok, "GET", "/v1/secret/data/acme/web/pushed", ""); st != http.StatusNotFound {
			t.Errorf("data before any write: %d", st)
		}
		// ... then data, which carries it.
		s, err := kv.Put(ctx, "acme/web/pushed", map[string]any{"token": "pushed-1"})
		if err != nil {
			t.Fatal(err)
		}
		if s.VersionMetadata.Version != 1 || s.CustomMetadata["managed-by"] != "external-secrets" {
			t.Errorf("write response: %+v custom %v", s.VersionMetadata, s.CustomMetadata)
		}
		if s, err = kv.Get(ctx, "acme/web/pushed"); err != nil || s.CustomMetadata["managed-by"] != "external-secrets" {
			t.Fatalf("read: %+v %v", s, err)
		}
		md2, err := kv.GetMetadata(ctx, "acme/web/pushed")
		if err != nil || md2.CurrentVersion != 1 || md2.CustomMetadata["managed-by"] != "external-secrets" {
			t.Fatalf("GetMetadata: %+v %v", md2, err)
		}
		entries := w.a.AuditSince(t, head)
		found := false
		for _, e := range entries {
			if e.Action == "vault.secret.metadata" && e.TargetName == "acme/web/pushed" {
				found = true
				if strings.Contains(toJSON(e.Details), "external-secrets") || !strings.Contains(toJSON(e.Details), "managed-by") {
					t.Errorf("metadata audit details %v: want the keys, not the values", e.Details)
				}
			}
		}
		if !found {
			t.Error("the metadata write is not audited")
		}

		// The official client's PutMetadata replaces custom_metadata and sets
		// max_versions and cas_required; PatchMetadata merges.
		if err := kv.PutMetadata(ctx, "acme/web/pushed", api.KVMetadataPutInput{
			CustomMetadata: map[string]any{"team": "payments", "tier": "1"}, MaxVersions: 5}); err != nil {
			t.Fatal(err)
		}
		md2, err = kv.GetMetadata(ctx, "acme/web/pushed")
		if err != nil || md2.MaxVersions != 5 || md2.CustomMetadata["team"] != "payments" || md2.CustomMetadata["managed-by"] != nil {
			t.Fatalf("after PutMetadata: %+v %v", md2, err)
		}
		yes := true
		if err := kv.PatchMetadata(ctx, "acme/web/pushed", api.KVMetadataPatchInput{
			CustomMetadata: map[string]any{"owner-team": "core"}, CASRequired: &yes}); err != nil {
			t.Fatal(err)
		}
		if st, body := kvCall(t, w, tok, "PATCH", "/v1/secret/metadata/acme/web/pushed", `{"custom_metadata":{"tier":null}}`); st != http.StatusUnsupportedMediaType {
			t.Errorf("PATCH without merge-patch content type = %d %s, want 415 as Vault", st, body)
		}
		req, _ := http.NewRequest("PATCH", w.a.URL+"/v1/secret/metadata/acme/web/pushed", strings.NewReader(`{"custom_metadata":{"tier":null}}`))
		req.Header.Set("X-Vault-Token", tok)
		req.Header.Set("Content-Type", "application/merge-patch+json")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH removing a key: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		st, md, body = kvReadMeta(t, w, tok, "acme/web/pushed")
		want := map[string]string{"team": "payments", "owner-team": "core"}
		if st != http.StatusOK || !md.CASRequired || md.MaxVersions != 5 || fmt.Sprint(md.CustomMetadata) != fmt.Sprint(want) {
			t.Fatalf("after patches: %d %s", st, body)
		}
		// cas_required is honoured.
		if _, err := kv.Put(ctx, "acme/web/pushed", map[string]any{"token": "no-cas"}); err == nil {
			t.Error("a write without cas succeeded on a cas_required secret")
		}
		if _, err := kv.Put(ctx, "acme/web/pushed", map[string]any{"token": "with-cas"}, api.WithCheckAndSet(1)); err != nil {
			t.Errorf("a write with cas: %v", err)
		}
		// PATCH of a path with neither secret nor metadata: 404, as Vault.
		if err := kv.PatchMetadata(ctx, "acme/web/none", api.KVMetadataPatchInput{CustomMetadata: map[string]any{"a": "b"}}); err == nil {
			t.Error("PATCH of metadata on an empty path succeeded")
		}

		// Deleting the secret's metadata deletes the custom metadata too.
		if err := kv.DeleteMetadata(ctx, "acme/web/pushed"); err != nil {
			t.Fatal(err)
		}
		if st, _, body := kvReadMeta(t, w, tok, "acme/web/pushed"); st != http.StatusNotFound {
			t.Errorf("metadata after DeleteMetadata: %d %s", st, body)
		}
		if _, err := kv.Put(ctx, "acme/web/pushed", map[string]any{"token": "again"}); err != nil {
			t.Fatalf("write after delete (cas_required went with the metadata): %v", err)
		}
		if st, md, body := kvReadMeta(t, w, tok, "acme/web/pushed"); st != http.StatusOK || md.CustomMetadata != nil || md.CASRequired {
			t.Errorf("recreated secret's metadata: %d %s", st, body)
		}
		// Metadata alone is deleted too.
		if st, _ := kvCall(t, w, tok, "PUT", "/v1/secret/metadata/acme/web/alone", `{"custom_metadata":{"a":"b"}}`); st != http.StatusNoContent {
			t.Fatalf("metadata alone: %d", st)
		}
		if st, _ := kvCall(t, w, tok, "DELETE", "/v1/secret/metadata/acme/web/alone", ""); st != http.StatusNoContent {
			t.Fatalf("delete of metadata alone: %d", st)
		}
		if st, _, body := kvReadMeta(t, w, tok, "acme/web/alone"); st != http.StatusNotFound {
			t.Errorf("metadata alone after delete: %d %s", st, body)
		}
	})
}

// TestKV_CustomMetadataRefused: metadata writes beyond Vault's limits, of
// the wrong shape or by someone who may not write change nothing.
func TestKV_CustomMetadataRefused(t *testing.T) {
	w, tok := kvWorld(t)
	if st, body := kvCall(t, w, tok, "POST", "/v1/secret/data/acme/web/db", `{"data":{"a":"b"}}`); st != http.StatusOK {
		t.Fatalf("write: %d %s", st, body)
	}
	many := map[string]string{}
	for i := range vault.MaxCustomMetadataKeys + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	tooMany, _ := json.Marshal(map[string]any{"custom_metadata": many})
	carolLogin := w.a.CreateUser(t, w.admin, "carol")
	w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/carol", map[string]string{"role": "reader"})
	carol := w.token(t, carolLogin, "vault:read", "vault:write")
	for _, tt := range []struct {
		name, tok, body string
		status          int
	}{
		{"too many keys", tok, string(tooMany), 400},
		{"long key", tok, `{"custom_metadata":{"` + strings.Repeat("k", vault.MaxCustomMetadataKeyLen+1) + `":"v"}}`, 400},
		{"long value", tok, `{"custom_metadata":{"k":"` + strings.Repeat("v", vault.MaxCustomMetadataValueLen+1) + `"}}`, 400},
		{"empty key", tok, `{"custom_metadata":{"":"v"}}`, 400},
		{"empty value", tok, `{"custom_metadata":{"k":""}}`, 400},
		{"object value", tok, `{"custom_metadata":{"k":{"a":"b"}}}`, 400},
		{"not an object", tok, `{"custom_metadata":"k=v"}`, 400},
		{"negative max_versions", tok, `{"max_versions":-1}`, 400},
		{"bad cas_required", tok, `{"cas_required":"maybe"}`, 400},
		{"bad delete_version_after", tok, `{"delete_version_after":"soon"}`, 400},
		{"a reader", carol, `{"custom_metadata":{"k":"v"}}`, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mark := w.a.Mark(t)
			st, body := kvCall(t, w, tt.tok, "POST", "/v1/secret/metadata/acme/web/db", tt.body)
			if st != tt.status || !strings.Contains(body, `"errors"`) {
				t.Errorf("= %d %s, want %d", st, body, tt.status)
			}
			mark.Unchanged(t)
		})
	}
	if st, md, body := kvReadMeta(t, w, tok, "acme/web/db"); st != http.StatusOK || md.CustomMetadata != nil {
		t.Errorf("metadata after refused writes: %d %s", st, body)
	}
}

// TestKV_MaxVersionsDestroysOldest: a path's max_versions is honoured as
// Vault does, by every write: versions older than the newest max_versions
// are destroyed (Rampart keeps their rows, marked destroyed).
func TestKV_MaxVersionsDestroysOldest(t *testing.T) {
	w, tok := kvWorld(t)
	ctx := t.Context()
	kv := w.vaultClient(t, tok).KVv2("secret")
	if err := kv.PutMetadata(ctx, "acme/web/rotating", api.KVMetadataPutInput{MaxVersions: 2}); err != nil {
		t.Fatal(err)
	}
	head := w.a.AuditHead(t)
	for i := 1; i <= 4; i++ {
		if _, err := kv.Put(ctx, "acme/web/rotating", map[string]any{"v": fmt.Sprintf("value-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for v := 1; v <= 4; v++ {
		s, err := kv.GetVersion(ctx, "acme/web/rotating", v)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if destroyed := v <= 2; s.VersionMetadata.Destroyed != destroyed || (s.Data == nil) != destroyed {
			t.Errorf("version %d: destroyed %v, data %v; want destroyed %v", v, s.VersionMetadata.Destroyed, s.Data, destroyed)
		}
	}
	var through []any
	for _, e := range w.a.AuditSince(t, head) {
		if e.Action == "vault.secret.write" && e.Details["destroyed_through"] != nil {
			through = append(through, e.Details["destroyed_through"])
		}
	}
	if len(through) != 2 {
		t.Errorf("writes audited with destroyed versions: %v, want the third and fourth", through)
	}
}

// TestVault_VersionLimitCountsVersionsNotDestroyed: a secret keeps a
// bounded number of versions that are not destroyed; writes past it are
// refused with what to do, and go on once old versions are destroyed or
// the path's max_versions destroys them.
func TestVault_VersionLimitCountsVersionsNotDestroyed(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.v.SetMaxVersions(3)
		ctx := e.as(context.Background(), e.owner)
		ref := mustRef(t, "acme/web/rotating")
		for i := range 3 {
			e.set(t, ref.String(), fmt.Sprintf("value-%d", i))
		}
		_, _, err := e.v.Set(ctx, ref, vault.Write{Value: vault.NewValue([]byte("next"))})
		if err == nil || !strings.Contains(err.Error(), "destroy old ones") {
			t.Fatalf("write past the limit: %v", err)
		}
		if err := e.v.DestroyVersions(ctx, ref, []int{1}); err != nil {
			t.Fatal(err)
		}
		e.set(t, ref.String(), "fourth")
		if _, _, err := e.v.Set(ctx, ref, vault.Write{Value: vault.NewValue([]byte("fifth"))}); err == nil {
			t.Fatal("write past the limit again succeeded")
		}
		two := 2
		if _, err := e.v.SetKVMetadata(ctx, ref, vault.KVMetadataChange{MaxVersions: &two}); err != nil {
			t.Fatal(err)
		}
		for i := 5; i <= 8; i++ {
			e.set(t, ref.String(), fmt.Sprintf("value-%d", i))
		}
		_, vs, err := e.v.History(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, v := range vs {
			if !v.Destroyed {
				live++
				if v.Version < 7 {
					t.Errorf("version %d is not destroyed", v.Version)
				}
			}
		}
		if live != 2 || vs[0].Version != 8 {
			t.Errorf("%d versions not destroyed, latest %d; want 2 and 8", live, vs[0].Version)
		}
	})
}

// TestKV_VaultCLI runs the real vault CLI (1.19.0) against Rampart: what
// it sends for -versions (strings), metadata put, and reading a deleted
// version all work as against Vault.
func TestKV_VaultCLI(t *testing.T) {
	bin := vaultBinary(t)
	w, tok := kvWorld(t)
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + w.a.URL, "VAULT_TOKEN=" + tok, "VAULT_MAX_RETRIES=0"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("kv", "put", "-mount=secret", "acme/web/db", "password=cli-p1")
	run("kv", "put", "-mount=secret", "acme/web/db", "password=cli-p2")
	run("kv", "metadata", "put", "-custom-metadata=team=payments", "secret/acme/web/db")
	if out := run("kv", "metadata", "get", "-format=json", "secret/acme/web/db"); !strings.Contains(out, `"team": "payments"`) {
		t.Errorf("metadata get:\n%s", out)
	}
	run("kv", "metadata", "put", "-delete-version-after=3h", "secret/acme/web/db")
	if out := run("kv", "metadata", "get", "-format=json", "secret/acme/web/db"); !strings.Contains(out, `"delete_version_after": "3h0m0s"`) {
		t.Errorf("metadata get after -delete-version-after=3h:\n%s", out)
	}
	run("kv", "delete", "-versions=1", "secret/acme/web/db")
	if out := run("kv", "get", "-format=json", "-version=1", "secret/acme/web/db"); strings.Contains(out, "cli-p1") || !strings.Contains(out, `"deletion_time": "20`) {
		t.Errorf("get of the deleted version:\n%s", out)
	}
	run("kv", "undelete", "-versions=1", "secret/acme/web/db")
	if out := run("kv", "get", "-format=json", "-version=1", "secret/acme/web/db"); !strings.Contains(out, "cli-p1") {
		t.Errorf("get after undelete:\n%s", out)
	}
	run("kv", "destroy", "-versions=1,2", "secret/acme/web/db")
	if out := run("kv", "get", "-format=json", "secret/acme/web/db"); strings.Contains(out, "cli-p2") || !strings.Contains(out, `"destroyed": true`) {
		t.Errorf("get of the destroyed version:\n%s", out)
	}
	if out := run("token", "lookup", "-format=json"); !strings.Contains(out, `"id": "`+tok+`"`) {
		t.Errorf("token lookup does not show the token's id:\n%s", out)
	}
	run("kv", "metadata", "delete", "secret/acme/web/db")
	run("kv", "metadata", "delete", "secret/acme/web/db") // idempotent, as on Vault
}

// TestKV_ListShowsMetadataOnlyPaths: a path whose metadata was written
// before any data (External Secrets Operator's PushSecret does so) is
// listed, as Vault lists every path with metadata — as a key in its own
// scope and, in a new environment, as that environment's folder — by
// LIST and by GET ?list=true, on both stores.
func TestKV_ListShowsMetadataOnlyPaths(t *testing.T) {
	eachStore(t, func(t *testing.T, opt apptest.Option) {
		w, tok := kvWorld(t, opt)
		ctx := t.Context()
		c := w.vaultClient(t, tok)
		kv := c.KVv2("secret")
		if _, err := kv.Put(ctx, "acme/web/prod/db", map[string]any{"password": "listed-1"}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"acme/org-meta", "acme/web/pushed", "acme/web/prod/pending", "acme/web/staging/only-meta",
			"acme/web/eu_west/a", "acme/web/euxwest/b"} {
			if err := kv.PutMetadata(ctx, path, api.KVMetadataPutInput{CustomMetadata: map[string]any{"managed-by": "external-secrets"}}); err != nil {
				t.Fatalf("metadata of %s: %v", path, err)
			}
		}
		// Metadata of a path that holds a secret is listed once.
		if err := kv.PutMetadata(ctx, "acme/web/prod/db", api.KVMetadataPutInput{CustomMetadata: map[string]any{"a": "b"}}); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"acme":              {"org-meta", "web/"},
			"acme/web":          {"eu_west/", "euxwest/", "prod/", "pushed", "staging/"},
			"acme/web/eu_west":  {"a"}, // '_' is no wildcard
			"acme/web/prod":     {"db", "pending"},
			"acme/web/staging":  {"only-meta"},
			"acme/web/staging/": {"only-meta"},
		}
		list := func(path string) []string {
			t.Helper()
			l, err := c.Logical().ListWithContext(ctx, "secret/metadata/"+path)
			if err != nil || l == nil {
				t.Fatalf("LIST %s: %v", path, err)
			}
			var keys []string
			for _, k := range l.Data["keys"].([]any) {
				keys = append(keys, k.(string))
			}
			return keys
		}
		for path, keys := range want {
			if got := list(path); fmt.Sprint(got) != fmt.Sprint(keys) {
				t.Errorf("LIST %s = %v, want %v", path, got, keys)
			}
			st, body := kvCall(t, w, tok, "GET", "/v1/secret/metadata/"+path+"?list=true", "")
			var env struct {
				Data struct {
					Keys []string `json:"keys"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(body), &env); st != http.StatusOK || err != nil || fmt.Sprint(env.Data.Keys) != fmt.Sprint(keys) {
				t.Errorf("GET %s?list=true = %d %s, want keys %v", path, st, body, keys)
			}
		}
		// Deleting the metadata unlists the path; an emptied folder is a 404.
		if err := kv.DeleteMetadata(ctx, "acme/web/staging/only-meta"); err != nil {
			t.Fatal(err)
		}
		if got := list("acme/web"); fmt.Sprint(got) != fmt.Sprint([]string{"eu_west/", "euxwest/", "prod/", "pushed"}) {
			t.Errorf("LIST acme/web after deleting the metadata = %v", got)
		}
		if st, body := kvCall(t, w, tok, "GET", "/v1/secret/metadata/acme/web/staging?list=true", ""); st != http.StatusNotFound {
			t.Errorf("list of the emptied environment = %d %s, want 404", st, body)
		}
		// Writing data to a listed path keeps it listed once.
		if _, err := kv.Put(ctx, "acme/web/pushed", map[string]any{"token": "pushed-1"}); err != nil {
			t.Fatal(err)
		}
		if got := list("acme/web"); fmt.Sprint(got) != fmt.Sprint([]string{"eu_west/", "euxwest/", "prod/", "pushed"}) {
			t.Errorf("LIST acme/web after the first write = %v", got)
		}
	})
}

// TestKV_DeleteVersionAfter: a path's delete_version_after dates each
// version written from then on, as Vault does: the version shows
// deletion_time = created_time + delay (in write and read responses and
// in the metadata) and, once that time has passed, reads through this
// API as deleted — a 404 with its metadata, never the value — until
// undeleted, which dates its deletion again from then. "0s" means never.
// Rampart's own API does not honour it. On both stores.
func TestKV_DeleteVersionAfter(t *testing.T) {
	eachStore(t, func(t *testing.T, opt apptest.Option) {
		t0 := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
		clock := apptest.NewClock(t0)
		w, tok := kvWorld(t, opt, apptest.WithClock(clock.Now))
		ctx := t.Context()
		kv := w.vaultClient(t, tok).KVv2("secret")
		const path = "acme/web/expiring"

		// The official client sends delete_version_after as Go prints it.
		if err := kv.PutMetadata(ctx, path, api.KVMetadataPutInput{DeleteVersionAfter: time.Hour}); err != nil {
			t.Fatal(err)
		}
		md, err := kv.GetMetadata(ctx, path)
		if err != nil || md.DeleteVersionAfter != time.Hour {
			t.Fatalf("metadata before data: %+v %v", md, err)
		}
		s1, err := kv.Put(ctx, path, map[string]any{"v": "expiring-value-1"})
		if err != nil {
			t.Fatal(err)
		}
		if !s1.VersionMetadata.DeletionTime.Equal(t0.Add(time.Hour)) {
			t.Errorf("write response deletion_time = %v, want %v", s1.VersionMetadata.DeletionTime, t0.Add(time.Hour))
		}
		clock.Advance(30 * time.Minute)
		if _, err := kv.Put(ctx, path, map[string]any{"v": "expiring-value-2"}); err != nil {
			t.Fatal(err)
		}

		// Before its time a version reads, showing the time ahead.
		s, err := kv.GetVersion(ctx, path, 1)
		if err != nil || s.Data["v"] != "expiring-value-1" || !s.VersionMetadata.DeletionTime.Equal(t0.Add(time.Hour)) {
			t.Fatalf("version 1 before its deletion time: %+v %v", s, err)
		}

		// Past it, version 1 reads as deleted; version 2 not yet.
		clock.Set(t0.Add(time.Hour + time.Second))
		s, err = kv.GetVersion(ctx, path, 1)
		if err != nil {
			t.Fatalf("KVv2.GetVersion of an expired version: %v (Vault: no error, the version's metadata)", err)
		}
		if s.Data != nil || s.VersionMetadata == nil || !s.VersionMetadata.DeletionTime.Equal(t0.Add(time.Hour)) || s.VersionMetadata.Destroyed {
			t.Fatalf("expired version: data %v, metadata %+v", s.Data, s.VersionMetadata)
		}
		st, body := kvCall(t, w, tok, "GET", "/v1/secret/data/"+path+"?version=1", "")
		if st != http.StatusNotFound || !strings.Contains(body, `"data":null`) ||
			!strings.Contains(body, `"deletion_time":"`+t0.Add(time.Hour).Format(time.RFC3339Nano)+`"`) || strings.Contains(body, "expiring-value") {
			t.Errorf("raw read of the expired version = %d %s", st, body)
		}
		if s, err := kv.Get(ctx, path); err != nil || s.Data["v"] != "expiring-value-2" ||
			!s.VersionMetadata.DeletionTime.Equal(t0.Add(90*time.Minute)) {
			t.Fatalf("version 2 before its deletion time: %+v %v", s, err)
		}
		md, err = kv.GetMetadata(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if d1, d2 := md.Versions["1"].DeletionTime, md.Versions["2"].DeletionTime; !d1.Equal(t0.Add(time.Hour)) || !d2.Equal(t0.Add(90*time.Minute)) {
			t.Errorf("metadata deletion times %v and %v, want %v and %v", d1, d2, t0.Add(time.Hour), t0.Add(90*time.Minute))
		}
		vs, err := kv.GetVersionsAsList(ctx, path)
		if err != nil || len(vs) != 2 || !vs[0].DeletionTime.Equal(t0.Add(time.Hour)) {
			t.Errorf("versions as list: %+v %v", vs, err)
		}

		// Rampart's own API is not held to it: version 1 still reveals.
		var rev vault.RevealResponse
		w.admin.Must(http.StatusOK, "POST", httpapi.Prefix+"/orgs/acme/projects/web/secrets/expiring/reveal", vault.RevealRequest{Version: 1}).Decode(t, &rev)
		if rev.Value != `{"v":"expiring-value-1"}` {
			t.Errorf("Rampart reveal of version 1 = %+v", rev)
		}

		// A delete of the expired version keeps the deletion time it had
		// (as Vault); an undelete dates the next deletion from now.
		if err := kv.Delete(ctx, path+"-none"); err != nil { // idempotent, as ever
			t.Fatal(err)
		}
		if err := kv.DeleteVersions(ctx, path, []int{1}); err != nil {
			t.Fatal(err)
		}
		if s, err := kv.GetVersion(ctx, path, 1); err != nil || !s.VersionMetadata.DeletionTime.Equal(t0.Add(time.Hour)) {
			t.Errorf("deleted expired version: %+v %v", s, err)
		}
		now := clock.Now()
		if err := kv.Undelete(ctx, path, []int{1}); err != nil {
			t.Fatal(err)
		}
		s, err = kv.GetVersion(ctx, path, 1)
		if err != nil || s.Data["v"] != "expiring-value-1" || !s.VersionMetadata.DeletionTime.Equal(now.Add(time.Hour)) {
			t.Fatalf("undeleted version: %+v %v", s, err)
		}

		// The audit log has the refused read, and no value.
		var refused int
		for _, e := range w.a.AuditSince(t, 0) {
			if e.Action == "vault.secret.read" && e.Outcome == "failure" && e.Details["via"] == "kv" {
				refused++
			}
			if strings.Contains(toJSON(e.Details), "expiring-value") {
				t.Errorf("audit entry %d holds a value", e.Seq)
			}
		}
		if refused < 2 {
			t.Errorf("%d failed KV reads audited, want the reads of the expired version", refused)
		}

		// "0s" means never, for versions written from then on; versions
		// already written keep their time, as on Vault.
		if err := kv.PutMetadata(ctx, path, api.KVMetadataPutInput{}); err != nil {
			t.Fatal(err)
		}
		if st, md, body := kvReadMeta(t, w, tok, path); st != http.StatusOK || !strings.Contains(body, `"delete_version_after":"0s"`) || md.CurrentVersion != 2 {
			t.Errorf("metadata after 0s: %d %s", st, body)
		}
		s3, err := kv.Put(ctx, path, map[string]any{"v": "expiring-value-3"})
		if err != nil || !s3.VersionMetadata.DeletionTime.IsZero() {
			t.Fatalf("write with 0s: %+v %v", s3, err)
		}
		clock.Advance(10 * time.Hour)
		if s, err := kv.Get(ctx, path); err != nil || s.Data["v"] != "expiring-value-3" {
			t.Errorf("version 3 long after, with 0s: %+v %v", s, err)
		}
		if s, err := kv.GetVersion(ctx, path, 2); err != nil || s.Data != nil {
			t.Errorf("version 2 long after its own time: %+v %v", s, err)
		}
	})
}

// TestKV_DeleteVersionAfterFormats: delete_version_after takes Vault's
// duration forms and reads back as Vault prints it; what Vault refuses
// gets a 400 that changes nothing.
func TestKV_DeleteVersionAfterFormats(t *testing.T) {
	w, tok := kvWorld(t)
	for _, tt := range []struct{ in, want string }{
		{`"3h"`, "3h0m0s"},
		{`"30m"`, "30m0s"},
		{`"1h30m"`, "1h30m0s"},
		{`5400`, "1h30m0s"},
		{`"90"`, "1m30s"},
		{`"2d"`, "48h0m0s"},
		{`"1.5s"`, "1s"},
		{`"0s"`, "0s"},
		{`"3h"`, "3h0m0s"},
		{`0`, "0s"},
		{`""`, "0s"},
	} {
		if st, body := kvCall(t, w, tok, "POST", "/v1/secret/metadata/acme/web/fmt", `{"delete_version_after":`+tt.in+`}`); st != http.StatusNoContent {
			t.Fatalf("delete_version_after %s: %d %s", tt.in, st, body)
		}
		if st, _, body := kvReadMeta(t, w, tok, "acme/web/fmt"); st != http.StatusOK || !strings.Contains(body, `"delete_version_after":"`+tt.want+`"`) {
			t.Errorf("after %s: %d %s, want %q", tt.in, st, body, tt.want)
		}
	}
	// PATCH sets it too; other fields keep theirs.
	if st, body := kvCall(t, w, tok, "POST", "/v1/secret/metadata/acme/web/fmt", `{"delete_version_after":"2h","custom_metadata":{"k":"v"}}`); st != http.StatusNoContent {
		t.Fatalf("post: %d %s", st, body)
	}
	kv := w.vaultClient(t, tok).KVv2("secret")
	d := 45 * time.Minute
	if err := kv.PatchMetadata(t.Context(), "acme/web/fmt", api.KVMetadataPatchInput{DeleteVersionAfter: &d}); err != nil {
		t.Fatal(err)
	}
	if st, md, body := kvReadMeta(t, w, tok, "acme/web/fmt"); st != http.StatusOK || !strings.Contains(body, `"delete_version_after":"45m0s"`) ||
		md.CustomMetadata["k"] != "v" {
		t.Errorf("after PATCH: %d %s", st, body)
	}

	for _, in := range []string{`"soon"`, `"-1h"`, `-5`, `"-5"`, `1.5`, `"1.5"`, `true`, `{"s":1}`, `"3x"`, `"d"`, `"99999999999999999h"`,
		`"99999999d"`, `99999999999`, `-99999999999`, `"101y"`} {
		mark := w.a.Mark(t)
		st, body := kvCall(t, w, tok, "POST", "/v1/secret/metadata/acme/web/fmt",
			`{"delete_version_after":`+in+`,"custom_metadata":{"changed":"yes"},"max_versions":3}`)
		if st != http.StatusBadRequest || !strings.Contains(body, "delete_version_after") {
			t.Errorf("delete_version_after %s = %d %s, want 400 naming the field", in, st, body)
		}
		mark.Unchanged(t)
	}
	if st, md, body := kvReadMeta(t, w, tok, "acme/web/fmt"); st != http.StatusOK || md.MaxVersions != 0 || md.CustomMetadata["changed"] != "" ||
		!strings.Contains(body, `"delete_version_after":"45m0s"`) {
		t.Errorf("metadata after refused writes: %d %s", st, body)
	}
}
