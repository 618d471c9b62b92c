// Package deploytest gives deploy's tests and benchmarks real parts: a
// small web application (./app) built as a static binary, packed into an
// OCI image and pushed to a real registry (go-containerregistry's
// registry implementation on a loopback port), referenced by digest as
// releases name images.
package deploytest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	buildOnce sync.Once
	binary    []byte
	buildErr  error
)

// AppBinary returns the test application built as a static Linux
// binary (cached in the temp directory by the hash of its source).
func AppBinary(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "app")
		code, err := os.ReadFile(filepath.Join(src, "main.go"))
		if err != nil {
			buildErr = err
			return
		}
		sum := sha256.Sum256(append(code, runtime.Version()...))
		out := filepath.Join(os.TempDir(), "rampart-deploytest-app-"+hex.EncodeToString(sum[:8]))
		if b, err := os.ReadFile(out); err == nil {
			binary = b
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out+".tmp", ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if msg, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{string(msg)}
			return
		}
		if buildErr = os.Rename(out+".tmp", out); buildErr == nil {
			binary, buildErr = os.ReadFile(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build the test application: %v", buildErr)
	}
	return binary
}

type buildError struct{ out string }

func (e *buildError) Error() string { return "go build: " + e.out }

// Image is the test application as an image: /app as entrypoint,
// VERSION in its environment, no user (the runtime picks a non-root
// one). extraEnv adds KEY=VALUE entries (CRASH=1, UNHEALTHY=1).
func Image(t testing.TB, version string, extraEnv ...string) v1.Image {
	t.Helper()
	bin := AppBinary(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4},
		{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "app":
			_, _ = tw.Write(bin)
		case "etc/hostname":
			_, _ = tw.Write([]byte("app\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/app"}
	cf.Config.Env = append([]string{"PATH=/", "VERSION=" + version}, extraEnv...)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// Registry is a real OCI registry on a loopback port.
type Registry struct {
	// Host is host:port.
	Host string
	srv  *httptest.Server
}

// Close stops the registry (a registry that goes down).
func (r *Registry) Close() { r.srv.Close() }

// StartRegistry runs a registry until the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Push pushes img to repo (org/name) and returns the repository
// reference and the digest, as a release names them.
func (r *Registry) Push(t testing.TB, repo string, img v1.Image) (image, digest string) {
	t.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Host + "/" + repo, d.String()
}
