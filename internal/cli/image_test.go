package cli_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/image/imagetest"
)

func runImageCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), cli.Env{Args: args, Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestImageBuild_LayoutWithEvidence(t *testing.T) {
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte("FROM scratch\nARG V\nCOPY hello.txt /srv/\nLABEL v=$V\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("hello"), 0o644)
	out := filepath.Join(t.TempDir(), "layout")
	env := map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	code, stdout, stderr := runImageCLI(t, env, "image", "build", "--output", "json", "--file", "Containerfile",
		"--build-arg", "V=7", "--source-commit", "abc123", "--invocation-id", "run-9", "--output-layout", out, ctxDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Digest, Layout, Provenance string
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	prov, err := os.ReadFile(got.Provenance)
	if err != nil {
		t.Fatal(err)
	}
	st, err := image.ParseStatement(prov)
	if err != nil {
		t.Fatal(err)
	}
	if "sha256:"+st.Subject[0].Digest["sha256"] != got.Digest || st.Predicate.RunDetails.Metadata.InvocationID != "run-9" ||
		st.Predicate.BuildDefinition.ExternalParameters.BuildArgs["V"] != "7" {
		t.Errorf("provenance %s does not describe build %s", prov, got.Digest)
	}

	// The same build again gives the same digest.
	code, stdout2, stderr := runImageCLI(t, env, "image", "build", "-o", "json", "-f", "Containerfile", "--build-arg", "V=7", "--output-layout", filepath.Join(t.TempDir(), "again"), ctxDir)
	if code != 0 || !strings.Contains(stdout2, got.Digest) {
		t.Errorf("second build: exit %d, %s %s; want digest %s", code, stdout2, stderr, got.Digest)
	}
}

func TestImageBuild_RefusedBuildsLeaveNothing(t *testing.T) {
	tests := []struct {
		name, dockerfile, want string
		code                   int
	}{
		{"RUN", "FROM scratch\nRUN make\n", "Dockerfile:2: RUN is not supported", cli.ExitUsage},
		{"escape", "FROM scratch\nCOPY ../../etc/passwd /p\n", "Dockerfile:2: COPY ../../etc/passwd: points outside the build context", cli.ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctxDir := t.TempDir()
			os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(tt.dockerfile), 0o644)
			parent := t.TempDir()
			out := filepath.Join(parent, "layout")
			code, _, stderr := runImageCLI(t, nil, "image", "build", "--output-layout", out, ctxDir)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("a refused build left %v behind", ents)
			}
		})
	}
	if code, _, stderr := runImageCLI(t, nil, "image", "build", "--push", t.TempDir()); code != cli.ExitUsage || !strings.Contains(stderr, "--push needs --tag") {
		t.Errorf("--push without --tag: exit %d %q", code, stderr)
	}
	// Without an output, a build only checks and prints the digest.
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY Dockerfile /\n"), 0o644)
	if code, stdout, stderr := runImageCLI(t, nil, "image", "build", ctxDir); code != 0 || !strings.Contains(stdout, "sha256:") {
		t.Errorf("build without output: exit %d, %q %q", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(ctxDir); len(ents) != 1 {
		t.Errorf("a build without output wrote %v", ents)
	}
}

func TestImageBuild_PushSignAndEvidence(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	crane := imagetest.Tool(t, "crane", imagetest.CraneVersion)
	oras := imagetest.Tool(t, "oras", imagetest.OrasVersion)
	cosign := imagetest.Tool(t, "cosign", imagetest.CosignVersion)

	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY site/ /srv/www/\n"), 0o644)
	os.MkdirAll(filepath.Join(ctxDir, "site"), 0o755)
	os.WriteFile(filepath.Join(ctxDir, "site", "index.html"), []byte("<h1>hello</h1>"), 0o644)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyDir := t.TempDir()
	os.WriteFile(filepath.Join(keyDir, "cosign.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(keyDir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)

	tag := reg.Host + "/acme/site:1"
	args := []string{"image", "build", "-o", "json", "--tag", tag, "--push", "--insecure-registry", "--registry-user", reg.User,
		"--sign-key", filepath.Join(keyDir, "cosign.key"), "--source-commit", "c0ffee", ctxDir}
	// A wrong password: refused with the unauthenticated exit code, no password shown.
	code, _, stderr := runImageCLI(t, map[string]string{"RAMPART_REGISTRY_PASSWORD": "not-the-password"}, args...)
	if code != cli.ExitUnauthenticated || strings.Contains(stderr, "not-the-password") {
		t.Errorf("wrong password: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := runImageCLI(t, map[string]string{"RAMPART_REGISTRY_PASSWORD": reg.Password}, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Digest, Pushed, Signature string
		Referrers                 []string
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + reg.DockerConfig(t)}
	if d := strings.TrimSpace(imagetest.Run(t, env, crane, "digest", "--insecure", tag)); d != got.Digest || len(got.Referrers) != 2 {
		t.Errorf("crane digest %s, build printed %s with referrers %v", d, got.Digest, got.Referrers)
	}
	out := imagetest.Run(t, env, oras, "discover", "--plain-http", "--format", "json", reg.Host+"/acme/site@"+got.Digest)
	if !strings.Contains(out, image.ArtifactTypeSBOM) || !strings.Contains(out, image.ArtifactTypeProvenance) {
		t.Errorf("oras discover: %s", out)
	}
	imagetest.Run(t, append(env, "TUF_ROOT="+filepath.Join(keyDir, "tuf")), cosign, "verify", "--key", filepath.Join(keyDir, "cosign.pub"),
		"--insecure-ignore-tlog=true", "--allow-http-registry", got.Pushed)
}
