package image

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/image/imagetest"
	"github.com/rampartsec/rampart/internal/scan"
)

var (
	scannerOnce sync.Once
	scanner     *scan.Scanner
	scannerErr  error
)

func testScanner(t testing.TB) *scan.Scanner {
	t.Helper()
	scannerOnce.Do(func() { scanner, scannerErr = scan.New(t.Context(), scan.Config{}) })
	if scannerErr != nil {
		t.Fatal(scannerErr)
	}
	return scanner
}

// appContext is a small application: a go.mod the SBOM must list.
func appContext(t testing.TB) string {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "ARG VERSION=dev\nFROM scratch\nARG VERSION\nCOPY app/ /app/\nLABEL version=$VERSION\nENTRYPOINT [\"/app/server\"]\n",
		"app/go.mod": "module example.com/app\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.6\n",
		"app/server": "#!/bin/sh\necho serving\n",
	})
	return dir
}

func evidenceFor(t testing.TB, res *Result, name string) *Evidence {
	t.Helper()
	ev, err := MakeEvidence(t.Context(), res, EvidenceOptions{
		Scanner:      testScanner(t),
		Name:         name,
		Source:       Source{Repository: "https://rampart.example/acme/app.git", Commit: "0123456789abcdef0123456789abcdef01234567", Ref: "refs/heads/main"},
		BuilderID:    "https://rampart.example/runners/runner-1",
		InvocationID: "https://rampart.example/acme/app/-/runs/42",
		Started:      time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Finished:     time.Date(2026, 11, 25, 10, 0, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatalf("MakeEvidence: %v", err)
	}
	return ev
}

func checkProvenance(t testing.TB, data []byte, res *Result) {
	t.Helper()
	st, err := ParseStatement(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Subject[0].Digest["sha256"]; got != res.Digest.Hex {
		t.Errorf("provenance subject digest %s, want the image's %s", got, res.Digest.Hex)
	}
	p := st.Predicate
	if p.BuildDefinition.BuildType != BuildType || p.RunDetails.Builder.ID != "https://rampart.example/runners/runner-1" ||
		p.RunDetails.Metadata.InvocationID != "https://rampart.example/acme/app/-/runs/42" {
		t.Errorf("provenance build type, builder or invocation wrong: %+v", p)
	}
	ext := p.BuildDefinition.ExternalParameters
	if ext.Source.Commit != "0123456789abcdef0123456789abcdef01234567" || ext.Dockerfile != "Dockerfile" || ext.BuildArgs["VERSION"] != "1.0" {
		t.Errorf("external parameters %+v", ext)
	}
	want := []ResourceDescriptor{{URI: "git+https://rampart.example/acme/app.git@0123456789abcdef0123456789abcdef01234567", Digest: map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"}, Name: "source"}}
	if diff := cmp.Diff(want, p.BuildDefinition.ResolvedDependencies); diff != "" {
		t.Errorf("resolved dependencies (-want +got):\n%s", diff)
	}
}

func checkSBOM(t testing.TB, data []byte) {
	t.Helper()
	var doc struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			PURL string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.BOMFormat != "CycloneDX" {
		t.Fatalf("SBOM is not CycloneDX: %v", err)
	}
	for _, c := range doc.Components {
		if strings.HasPrefix(c.PURL, "pkg:golang/golang.org/x/text@") && strings.HasSuffix(c.PURL, "0.3.6") {
			return
		}
	}
	t.Errorf("SBOM components %+v lack golang.org/x/text@v0.3.6", doc.Components)
}

// referrerTypes walks oras discover's JSON for artifact types and digests.
func referrerTypes(t testing.TB, out string) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, out)
	}
	found := map[string]string{}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if at, ok := x["artifactType"].(string); ok {
				if d, ok := x["digest"].(string); ok {
					found[at] = d
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return found
}

func TestPush_TokenRegistryWithEvidence(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	crane := imagetest.Tool(t, "crane", imagetest.CraneVersion)
	oras := imagetest.Tool(t, "oras", imagetest.OrasVersion)

	res := build(t, appContext(t), BuildOptions{BuildArgs: map[string]string{"VERSION": "1.0"}})
	repo := reg.Host + "/acme/app"
	ev := evidenceFor(t, res, repo)

	// Wrong credentials: refused, nothing pushed.
	_, err := Push(t.Context(), res.Image, repo+":1.0", ev, PushOptions{Auth: &authn.Basic{Username: reg.User, Password: "wrong"}, Insecure: true})
	if !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("push with a wrong password: %v, want unauthenticated", err)
	}
	if strings.Contains(err.Error(), reg.Password) || strings.Contains(apperr.Message(err), "wrong") {
		t.Errorf("error shows a password: %v", err)
	}

	pushed, err := Push(t.Context(), res.Image, repo+":1.0", ev, PushOptions{Auth: &authn.Basic{Username: reg.User, Password: reg.Password}, Insecure: true})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if reg.Tokens.Load() == 0 {
		t.Fatal("no bearer token was issued: the push did not go through token auth")
	}
	if pushed.Image.DigestStr() != res.Digest.String() || len(pushed.Referrers) != 2 {
		t.Fatalf("pushed %+v", pushed)
	}

	// The real clients see the image, its files and its evidence.
	cfgDir := reg.DockerConfig(t)
	env := []string{"DOCKER_CONFIG=" + cfgDir}
	if got := strings.TrimSpace(imagetest.Run(t, env, crane, "digest", "--insecure", repo+":1.0")); got != res.Digest.String() {
		t.Errorf("crane digest = %s, want %s", got, res.Digest)
	}
	var cfg struct {
		Config struct {
			Entrypoint []string
			Labels     map[string]string
		} `json:"config"`
	}
	json.Unmarshal([]byte(imagetest.Run(t, env, crane, "config", "--insecure", repo+":1.0")), &cfg)
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/app/server"}) || cfg.Config.Labels["version"] != "1.0" {
		t.Errorf("crane config: %+v", cfg.Config)
	}
	exported := filepath.Join(t.TempDir(), "fs.tar")
	imagetest.Run(t, env, crane, "export", "--insecure", repo+":1.0", exported)
	if data, _ := os.ReadFile(exported); !strings.Contains(string(data), "echo serving") {
		t.Error("crane export does not contain /app/server")
	}

	out := imagetest.Run(t, nil, oras, "discover", "--plain-http", "--registry-config", filepath.Join(cfgDir, "config.json"), "--format", "json", repo+"@"+res.Digest.String())
	refs := referrerTypes(t, out)
	if refs[ArtifactTypeSBOM] == "" || refs[ArtifactTypeProvenance] == "" {
		t.Fatalf("oras discover found %v, want an SBOM and a provenance referrer\n%s", refs, out)
	}
	// The provenance blob, fetched back with crane, names the digest.
	var m struct {
		Layers  []struct{ Digest string } `json:"layers"`
		Subject struct{ Digest string }   `json:"subject"`
	}
	json.Unmarshal([]byte(imagetest.Run(t, env, crane, "manifest", "--insecure", repo+"@"+refs[ArtifactTypeProvenance])), &m)
	if m.Subject.Digest != res.Digest.String() || len(m.Layers) != 1 {
		t.Fatalf("provenance manifest %+v", m)
	}
	checkProvenance(t, []byte(imagetest.Run(t, env, crane, "blob", "--insecure", repo+"@"+m.Layers[0].Digest)), res)
	json.Unmarshal([]byte(imagetest.Run(t, env, crane, "manifest", "--insecure", repo+"@"+refs[ArtifactTypeSBOM])), &m)
	checkSBOM(t, []byte(imagetest.Run(t, env, crane, "blob", "--insecure", repo+"@"+m.Layers[0].Digest)))
}

func TestWriteLayout_EvidenceBesideTheImage(t *testing.T) {
	oras := imagetest.Tool(t, "oras", imagetest.OrasVersion)
	res := build(t, appContext(t), BuildOptions{BuildArgs: map[string]string{"VERSION": "1.0"}})
	ev := evidenceFor(t, res, "acme/app")
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteLayout(dir, "1.0", res.Image, ev); err != nil {
		t.Fatal(err)
	}
	prov, err := os.ReadFile(filepath.Join(dir, LayoutProvenanceFile))
	if err != nil {
		t.Fatal(err)
	}
	checkProvenance(t, prov, res)
	sb, _ := os.ReadFile(filepath.Join(dir, LayoutSBOMFile))
	checkSBOM(t, sb)

	refs := referrerTypes(t, imagetest.Run(t, nil, oras, "discover", "--oci-layout", "--format", "json", dir+"@"+res.Digest.String()))
	if refs[ArtifactTypeSBOM] == "" || refs[ArtifactTypeProvenance] == "" {
		t.Fatalf("oras discover in the layout found %v", refs)
	}
	// The layout is a base for another build, and the evidence there is
	// not mistaken for an image.
	next := t.TempDir()
	writeTree(t, next, map[string]string{"Dockerfile": "FROM app\nCOPY extra /extra\n", "extra": "x"})
	r2 := build(t, next, BuildOptions{Bases: &Resolver{Local: map[string]string{"app": "oci-layout:" + dir}}})
	if r2.Materials[0].Digest != res.Digest {
		t.Errorf("base resolved to %s, want %s", r2.Materials[0].Digest, res.Digest)
	}
	// A second write to the same directory is refused and changes nothing.
	if err := WriteLayout(dir, "1.0", r2.Image, nil); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("writing over a layout: %v, want conflict", err)
	}
}

func TestSign_CosignVerifies(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	cosign := imagetest.Tool(t, "cosign", imagetest.CosignVersion)
	res := build(t, appContext(t), BuildOptions{BuildArgs: map[string]string{"VERSION": "1.0"}})
	repo := reg.Host + "/acme/app"
	opts := PushOptions{Auth: &authn.Basic{Username: reg.User, Password: reg.Password}, Insecure: true}
	pushed, err := Push(t.Context(), res.Image, repo+":1.0", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	signer, err := ParseSigningKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	// Two signatures: the second is added beside the first.
	for range 2 {
		if _, err := Sign(t.Context(), pushed.Image, signer, opts); err != nil {
			t.Fatalf("Sign: %v", err)
		}
	}

	dir := reg.DockerConfig(t)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
	env := []string{"DOCKER_CONFIG=" + dir, "SIGSTORE_NO_CACHE=true", "TUF_ROOT=" + filepath.Join(dir, "tuf")}
	out := imagetest.Run(t, env, cosign, "verify", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog=true",
		"--allow-http-registry", "--output", "json", pushed.Image.String())
	var verified []SimpleSigning
	if err := json.Unmarshal([]byte(out), &verified); err != nil || len(verified) != 2 {
		t.Fatalf("cosign verify output: %v\n%s", err, out)
	}
	if verified[0].Critical.Image.DockerManifestDigest != res.Digest.String() {
		t.Errorf("cosign verified digest %s, want %s", verified[0].Critical.Image.DockerManifestDigest, res.Digest)
	}

	// Another key does not verify.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opub, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	os.WriteFile(filepath.Join(dir, "other.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: opub}), 0o644)
	cmd := exec.Command(cosign, "verify", "--key", filepath.Join(dir, "other.pub"), "--insecure-ignore-tlog=true", "--allow-http-registry", pushed.Image.String())
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("cosign verify with another key succeeded:\n%s", out)
	}
}

func TestBuild_BaseFromTokenRegistry(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	auth := &authn.Basic{Username: reg.User, Password: reg.Password}
	bdir := t.TempDir()
	writeTree(t, bdir, map[string]string{"Dockerfile": "FROM scratch\nCOPY etc/ /etc/\nENV BASE=yes\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\nweb:x:101:102::/srv:/bin/false\n"})
	base := build(t, bdir, BuildOptions{})
	baseRef := reg.Host + "/library/base:3"
	if _, err := Push(t.Context(), base.Image, baseRef, nil, PushOptions{Auth: auth, Insecure: true}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "ARG BASE_IMAGE\nFROM $BASE_IMAGE\nCOPY --chown=web index.html /srv/\n", "index.html": "hi"})
	opts := BuildOptions{BuildArgs: map[string]string{"BASE_IMAGE": baseRef}, Bases: &Resolver{Auth: auth, Insecure: true}}
	res := build(t, dir, opts)
	if f := imageFiles(t, res.Image)["srv/index.html"]; f.Content != "hi" || f.UID != 101 || f.GID != 102 {
		t.Errorf("srv/index.html = %+v, want owned by web (101:102) from the base's /etc/passwd", f)
	}
	if diff := cmp.Diff([]Material{{URI: baseRef, Digest: base.Digest}}, res.Materials); diff != "" {
		t.Errorf("materials (-want +got):\n%s", diff)
	}
	if again := build(t, dir, opts); again.Digest != res.Digest {
		t.Errorf("rebuilding on the pulled base: %s, then %s", res.Digest, again.Digest)
	}

	// Without credentials the registry refuses, and the error says so.
	opts.Bases = &Resolver{Insecure: true}
	opts.ContextDir, opts.Platform = dir, "linux/amd64"
	_, err := Build(t.Context(), opts)
	if !apperr.Is(err, apperr.Unauthenticated) || !strings.Contains(apperr.Message(err), "Dockerfile:2: FROM "+baseRef) {
		t.Errorf("anonymous pull: %v, want unauthenticated naming line 2", err)
	}
}
