package vault_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/vault"
)

func TestSigningKeys_SignAndVerify(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		for _, alg := range []string{vault.AlgECDSAP256, vault.AlgEd25519} {
			t.Run(alg, func(t *testing.T) {
				ref := mustRef(t, "acme/web/cosign-"+alg)
				k, err := e.v.CreateSigningKey(ctx, ref, alg)
				if err != nil {
					t.Fatal(err)
				}
				payload := []byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:abc"}}}`)
				msg := payload
				if alg == vault.AlgECDSAP256 {
					d := sha256.Sum256(payload)
					msg = d[:]
				}
				sig, err := e.v.Sign(ctx, ref.String(), msg)
				if err != nil {
					t.Fatal(err)
				}
				pemBytes, err := e.v.PublicKey(ctx, ref.String())
				if err != nil || !bytes.Equal(pemBytes, k.PublicKeyPEM) {
					t.Fatalf("public key: %v", err)
				}
				blk, _ := pem.Decode(pemBytes)
				pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				switch pk := pub.(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(pk, msg, sig) {
						t.Fatal("ECDSA signature does not verify")
					}
				case ed25519.PublicKey:
					if !ed25519.Verify(pk, msg, sig) {
						t.Fatal("Ed25519 signature does not verify")
					}
				default:
					t.Fatalf("public key type %T", pub)
				}
				// The private key appears nowhere: not in the public
				// listing, not in the audit log.
				keys, err := e.v.SigningKeys(context.Background(), ref.Scope)
				if err != nil || len(keys) == 0 {
					t.Fatal(keys, err)
				}
				if strings.Contains(e.auditText(t), "PRIVATE KEY") {
					t.Error("audit log holds a private key")
				}
				if signs := e.auditEntries(t, "vault.key.sign"); len(signs) == 0 || signs[len(signs)-1].TargetName != ref.String() {
					t.Errorf("signature not audited: %+v", signs)
				}
			})
		}
		if _, err := e.v.Sign(ctx, "acme/web/cosign-ecdsa-p256", []byte("not a digest")); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("ECDSA sign of a non-digest: %v", err)
		}
		if _, err := e.v.Sign(ctx, "acme/web/nope", make([]byte, 32)); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("sign with a missing key: %v", err)
		}
		if _, err := e.v.CreateSigningKey(ctx, mustRef(t, "acme/web/cosign-ed25519"), vault.AlgEd25519); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("duplicate key: %v", err)
		}
		if _, err := e.v.CreateSigningKey(ctx, mustRef(t, "acme/web/rsa"), "rsa-2048"); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("unknown algorithm: %v", err)
		}
	})
}

// TestLeaks_ToRotation: a scan finds a vault secret's value; the vault
// marks it leaked, records where, and rotates it when the project asks.
func TestLeaks_ToRotation(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		gen := "random:24"
		if _, _, err := e.v.Set(ctx, mustRef(t, "acme/web/prod/TOKEN"), vault.Write{Value: vault.NewValue([]byte("tok-leaked-in-git-0001")), Generator: &gen}); err != nil {
			t.Fatal(err)
		}
		e.set(t, "acme/web/prod/MANUAL", "manual-key-0002")
		e.set(t, "acme/web/prod/MANUAL", "manual-key-0003")

		// Found by value (push protection) and by fingerprint (a scan that
		// keeps no values); an unrelated value matches nothing.
		old := vault.NewValue([]byte("manual-key-0002"))
		leaks, err := e.v.ReportLeaks(ctx, []vault.Found{
			{Value: ptr(vault.NewValue([]byte("manual-key-0003"))), Source: "push-protection", Location: "acme/web@3f2a1c:config/prod.env:4"},
			{Fingerprint: e.v.Fingerprint(old), Source: "scan", Location: "image acme/web@sha256:1234 layer 2 /app/.env"},
			{Value: ptr(vault.NewValue([]byte("nothing-like-it"))), Source: "scan", Location: "x"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range leaks {
			got = append(got, fmt.Sprintf("%s v%d current=%v %s", l.Ref, l.Version, l.Current, l.Source))
		}
		want := []string{"acme/web/prod/MANUAL v2 current=true push-protection", "acme/web/prod/MANUAL v1 current=false scan"}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("leaks (-want +got):\n%s", d)
		}
		sec, err := e.v.Metadata(ctx, mustRef(t, "acme/web/prod/MANUAL"))
		if err != nil || sec.LeakedAt.IsZero() {
			t.Fatalf("secret not marked leaked: %+v %v", sec, err)
		}
		// Reported again: no second alert for the same place.
		if again, _ := e.v.ReportLeaks(ctx, []vault.Found{{Value: ptr(vault.NewValue([]byte("manual-key-0003"))), Source: "push-protection", Location: "acme/web@3f2a1c:config/prod.env:4"}}); len(again) != 0 {
			t.Errorf("duplicate leak recorded: %+v", again)
		}
		// The alert is audited with where, never with the value.
		entries := e.auditEntries(t, "vault.secret.leaked")
		if len(entries) != 2 || entries[0].Details["location"] != "acme/web@3f2a1c:config/prod.env:4" {
			t.Fatalf("leak audit entries: %+v", entries)
		}
		if strings.Contains(e.auditText(t), "manual-key-000") {
			t.Error("audit log holds a leaked value")
		}
		// Rotation by hand resolves the open alerts.
		nv := vault.NewValue([]byte("manual-key-0004"))
		if _, _, err := e.v.Rotate(ctx, mustRef(t, "acme/web/prod/MANUAL"), &nv); err != nil {
			t.Fatal(err)
		}
		open, err := e.v.Leaks(ctx, "acme", true)
		if err != nil || len(open) != 0 {
			t.Fatalf("open leaks after rotation: %+v %v", open, err)
		}

		// With rotation on leak enabled, a generated secret rotates itself.
		if err := e.v.SetSettings(ctx, vault.Scope{Org: "acme", Project: "web"}, vault.ProjectSettings{RotateOnLeak: true}); err != nil {
			t.Fatal(err)
		}
		leaks, err = e.v.ReportLeaks(ctx, []vault.Found{{Value: ptr(vault.NewValue([]byte("tok-leaked-in-git-0001"))), Source: "scan", Location: "acme/web@9c1d:README.md:10"}})
		if err != nil || len(leaks) != 1 || !leaks[0].AutoRotated || leaks[0].RotatedVersion != 2 {
			t.Fatalf("auto rotation: %+v %v", leaks, err)
		}
		e.grant(t, "me", []string{"web/prod/*"}, "user:olivia")
		v, err := e.read(t, reader(e.owner), "acme/web/prod/TOKEN", 0)
		if err != nil || v == "tok-leaked-in-git-0001" || len(v) != 24 {
			t.Fatalf("value after auto rotation: %q %v", v, err)
		}
		all, _ := e.v.Leaks(ctx, "acme", false)
		if len(all) != 3 || all[0].ResolvedAt.IsZero() || all[0].RotatedVersion != 2 {
			t.Fatalf("all leaks: %+v", all)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestInjection_PipelineAndDeployment(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		e.set(t, "acme/web/prod/DB_PASSWORD", "pa55-word-prod")
		e.set(t, "acme/web/prod/TLS_KEY", "-----BEGIN KEY-----\nline-one-secret\nline-two-secret\n-----END KEY-----")
		e.grant(t, "deploy", []string{"web/prod/*"}, "pipeline:web:main:prod", "deployment:web:prod")
		specs := []vault.Injection{{Ref: "acme/web/prod/DB_PASSWORD", Env: "DB_PASSWORD"}, {Ref: "acme/web/prod/TLS_KEY", File: "tls/key.pem"}}
		run := vault.PipelineRun{Org: "acme", Project: "web", Branch: "main", Env: "prod", Run: "12", Job: "deploy", TriggeredBy: "olivia"}
		b, err := e.v.ResolveForJob(ctx, run, specs)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"DB_PASSWORD=pa55-word-prod"}, b.Environ()); d != "" {
			t.Errorf("environ: %s", d)
		}
		run.Branch = "feature/x"
		if _, err := e.v.ResolveForJob(ctx, run, specs); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("feature branch job got prod secrets: %v", err)
		}

		// Logs are masked, also across writes and line by line.
		var logBuf bytes.Buffer
		w := b.Masker().Writer(&logBuf)
		for _, chunk := range []string{"connecting with pa5", "5-word-prod ok\n", "key line-one-secret\n", "pa55-word-pro"} {
			if _, err := w.Write([]byte(chunk)); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if got, want := logBuf.String(), "connecting with *** ok\nkey ***\npa55-word-pro"; got != want {
			t.Errorf("masked log = %q, want %q", got, want)
		}

		// Files go to tmpfs only.
		shm := "/dev/shm"
		var st syscall.Statfs_t
		if err := syscall.Statfs(shm, &st); err != nil || st.Type != 0x01021994 {
			t.Fatalf("%s is not tmpfs on this machine", shm)
		}
		dir, err := os.MkdirTemp(shm, "rampart-secrets-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := b.WriteFiles(dir); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem"))
		if err != nil || fi.Mode().Perm() != 0o400 {
			t.Fatalf("secret file: %v %v", fi, err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "tls", "key.pem")); !strings.Contains(string(got), "line-two-secret") {
			t.Errorf("secret file holds %q", got)
		}
		if err := b.WriteFiles(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not on tmpfs") {
			t.Errorf("WriteFiles on a disk: %v", err)
		}

		// Kubernetes: an immutable Secret owned by the release.
		d, err := e.v.ResolveForDeployment(ctx, vault.DeploymentRun{Org: "acme", Project: "web", Env: "prod", Release: "r7", RequestedBy: "olivia"}, specs)
		if err != nil {
			t.Fatal(err)
		}
		manifest, err := d.KubernetesSecret("web-r7-secrets", "web-prod", vault.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "7d1f0f6e-1111-2222-3333-444455556666"})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Kind     string `json:"kind"`
			Metadata struct {
				OwnerReferences []struct {
					Kind       string `json:"kind"`
					UID        string `json:"uid"`
					Controller bool   `json:"controller"`
				} `json:"ownerReferences"`
			} `json:"metadata"`
			Immutable bool              `json:"immutable"`
			Data      map[string]string `json:"data"`
		}
		if err := json.Unmarshal(manifest, &m); err != nil {
			t.Fatal(err)
		}
		pw, _ := base64.StdEncoding.DecodeString(m.Data["DB_PASSWORD"])
		if m.Kind != "Secret" || !m.Immutable || len(m.Metadata.OwnerReferences) != 1 || !m.Metadata.OwnerReferences[0].Controller ||
			m.Metadata.OwnerReferences[0].UID == "" || string(pw) != "pa55-word-prod" || m.Data["key.pem"] == "" {
			t.Errorf("manifest = %s", manifest)
		}
		reads := e.auditEntries(t, "vault.secret.read")
		last := reads[len(reads)-1]
		if !strings.HasPrefix(fmt.Sprint(last.Details["reader"]), "deployment acme/web env prod release r7") || last.Details["on_behalf_of"] != "olivia" {
			t.Errorf("deployment read audited as %+v", last.Details)
		}
	})
}

func TestInjection_BadSpecs(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		run := vault.PipelineRun{Org: "acme", Project: "web", Branch: "main", Env: "prod"}
		tests := []struct {
			name  string
			specs []vault.Injection
		}{
			{"neither env nor file", []vault.Injection{{Ref: "acme/X"}}},
			{"both", []vault.Injection{{Ref: "acme/X", Env: "X", File: "x"}}},
			{"bad variable", []vault.Injection{{Ref: "acme/X", Env: "1X"}}},
			{"escaping file", []vault.Injection{{Ref: "acme/X", File: "../etc/passwd"}}},
			{"absolute file", []vault.Injection{{Ref: "acme/X", File: "/etc/passwd"}}},
			{"unclean file", []vault.Injection{{Ref: "acme/X", File: "a/./b"}}},
			{"duplicate variable", []vault.Injection{{Ref: "acme/X", Env: "X"}, {Ref: "acme/Y", Env: "X"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := e.v.ResolveForJob(context.Background(), run, tt.specs); !apperr.Is(err, apperr.Invalid) {
					t.Fatalf("ResolveForJob = %v, want invalid", err)
				}
			})
		}
	})
}

// TestRotateKEK_Online rotates the key-encryption key while readers and
// writers keep going: nothing fails, every version stays readable, and
// every data key ends up under the new version.
func TestRotateKEK_Online(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		for i := range 30 {
			for v := range 3 {
				e.set(t, fmt.Sprintf("acme/web/S%02d", i), fmt.Sprintf("value-%d-%d", i, v))
			}
		}
		if _, err := e.v.CreateSigningKey(ctx, mustRef(t, "acme/web/signer"), ""); err != nil {
			t.Fatal(err)
		}
		e.grant(t, "all", []string{"web/*"}, "user:olivia")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := fmt.Sprintf("value-%d-%d", i%30, i%3)
				if got, err := e.read(t, reader(e.owner), fmt.Sprintf("acme/web/S%02d", i%30), i%3+1); err != nil || got != want {
					errs <- fmt.Errorf("read during rotation = %q, %v", got, err)
				}
			}
		})
		wg.Go(func() {
			for i := 0; i < 20; i++ {
				if _, _, err := e.v.Set(ctx, mustRef(t, "acme/web/DURING"), vault.Write{Value: vault.NewValue([]byte("during"))}); err != nil {
					errs <- err
				}
			}
		})
		v, err := e.v.RotateKEK(ctx)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err != nil || v != 2 {
			t.Fatalf("RotateKEK = %d, %v", v, err)
		}
		st, err := e.v.KEKStatus(ctx)
		if err != nil || st.Pending != 0 || st.Current != 2 || st.ByVersion[1] != 0 || st.FinishedAt.IsZero() {
			t.Fatalf("status after rotation: %+v %v", st, err)
		}
		for i := range 30 {
			for ver := 1; ver <= 3; ver++ {
				if got, err := e.read(t, reader(e.owner), fmt.Sprintf("acme/web/S%02d", i), ver); err != nil || got != fmt.Sprintf("value-%d-%d", i, ver-1) {
					t.Fatalf("S%02d v%d after rotation = %q, %v", i, ver, got, err)
				}
			}
		}
		if _, err := e.v.Sign(ctx, "acme/web/signer", make([]byte, 32)); err != nil {
			t.Fatalf("sign after rotation: %v", err)
		}
		// A vault restarted on the keyring re-read from disk still opens
		// everything (the fingerprint key was re-wrapped too).
		ring, err := newRingIn(e.keysDir)
		if err != nil {
			t.Fatal(err)
		}
		again := e.start(t, ring, false)
		if _, _, _, err := again.Read(context.Background(), reader(e.owner), mustRef(t, "acme/web/S00"), 1); err != nil {
			t.Fatal(err)
		}
	})
}

// restarts is a Restarter that records what it receives and fails its
// first fail calls (as a deploy whose target is down would).
type restarts struct {
	mu     sync.Mutex
	fail   int
	failed chan struct{}
	got    chan vault.RotationEvent
}

func (r *restarts) SecretRotated(_ context.Context, ev vault.RotationEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		r.failed <- struct{}{}
		return errors.New("deploy target unreachable")
	}
	r.got <- ev
	return nil
}

// TestRotation_RestartsWhenProjectAsks: once a project asks for rolling
// restarts, each rotation of one of its secrets reaches the Restarter, in
// order, also after a failed delivery; before that, and for org secrets,
// none does.
func TestRotation_RestartsWhenProjectAsks(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		rs := &restarts{fail: 1, failed: make(chan struct{}, 1), got: make(chan vault.RotationEvent, 10)}
		v := e.start(t, e.ring, true, func(d *vault.Deps) { d.Restarter = rs })
		ctx := e.as(context.Background(), e.owner)
		rotate := func(ref string) int {
			t.Helper()
			val := vault.NewValue([]byte("value-" + ref + time.Now().String()))
			_, ver, err := v.Rotate(ctx, mustRef(t, ref), &val)
			if err != nil {
				t.Fatalf("rotate %s: %v", ref, err)
			}
			return ver.Version
		}
		quiet := func(why string) {
			t.Helper()
			select {
			case ev := <-rs.got:
				t.Fatalf("%s: restart for %s v%d", why, ev.Ref, ev.Version)
			case <-time.After(300 * time.Millisecond):
			}
		}
		e.set(t, "acme/web/prod/DB", "v1")
		e.set(t, "acme/ORG_TOKEN", "v1")
		rotate("acme/web/prod/DB")
		quiet("project did not ask")

		if err := v.SetSettings(ctx, vault.Scope{Org: "acme", Project: "web"}, vault.ProjectSettings{RestartOnRotate: true}); err != nil {
			t.Fatal(err)
		}
		rotate("acme/ORG_TOKEN")
		quiet("org secret")
		first := rotate("acme/web/prod/DB") // its delivery fails once
		select {
		case <-rs.failed:
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery attempted after a rotation")
		}
		quiet("delivery failed")
		second := rotate("acme/web/prod/DB") // the next rotation wakes delivery again
		for _, want := range []int{first, second} {
			select {
			case ev := <-rs.got:
				if ev.Ref.String() != "acme/web/prod/DB" || ev.Version != want {
					t.Fatalf("restart for %s v%d, want v%d", ev.Ref, ev.Version, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no restart for version %d", want)
			}
		}
	})
}
