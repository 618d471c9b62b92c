// Package imagetest runs the real registry and clients the image tests
// need: the CNCF reference registry behind a bearer-token service, and
// the crane, oras and cosign binaries that .ci/run builds into
// .cache/tools.
package imagetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rampartsec/rampart/internal/testenv"
)

// Pinned versions of the real clients and registry; .ci/run builds them
// into .cache/tools at the repository root.
const (
	RegistryVersion = "v3.1.2"
	CraneVersion    = "v0.22.1"
	OrasVersion     = "v1.3.6"
	CosignVersion   = "v2.6.5"
)

// Tool returns a binary built into .cache/tools, or handles it as missing.
func Tool(t testing.TB, name, version string) string {
	t.Helper()
	return testenv.Tool(t, name, version)
}

// Registry is the reference registry (CNCF distribution) behind a
// bearer-token service: clients log in with user/password at the token
// endpoint and present the JWT it issues, as with Docker Hub or Rampart.
// A small front serves the token endpoint on the registry's own address
// and proxies the rest to it, as Rampart's registry does: clients
// (go-containerregistry, oras) refuse token realms at other loopback or
// private addresses than the registry's (an SSRF guard).
type Registry struct {
	Host           string // 127.0.0.1:port
	User, Password string
	// Tokens counts the bearer tokens issued, Denied the token requests
	// refused.
	Tokens, Denied atomic.Int64
}

// StartRegistry starts the registry and its token service for the test.
func StartRegistry(t *testing.T) *Registry {
	t.Helper()
	bin := Tool(t, "registry", RegistryVersion)
	r := &Registry{User: "builder", Password: "s3cret-" + randHex(t)}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const kid, issuer, service = "rampart-test-key", "rampart-test-issuer", "rampart-test-registry"
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	backend := fmt.Sprintf("127.0.0.1:%d", port)
	target := &url.URL{Scheme: "http", Host: backend}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
	}}
	tokens := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.User || p != r.Password {
			r.Denied.Add(1)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		type access struct {
			Type    string   `json:"type"`
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		}
		var grants []access
		for _, scope := range req.URL.Query()["scope"] {
			parts := strings.Split(scope, ":")
			if len(parts) != 3 {
				continue
			}
			grants = append(grants, access{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
		}
		now := time.Now()
		claims := map[string]any{
			"iss": issuer, "sub": u, "aud": service, "exp": now.Add(5 * time.Minute).Unix(),
			"nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "jti": randHex(t), "access": grants,
		}
		tok, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		r.Tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
	})
	mux := http.NewServeMux()
	mux.Handle("/token", tokens)
	mux.Handle("/", proxy)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	r.Host = strings.TrimPrefix(ts.URL, "http://")

	dir := t.TempDir()
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}}})
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  token:
    realm: %s/token
    service: %s
    issuer: %s
    jwks: %s
`, filepath.Join(dir, "data"), backend, ts.URL, service, issuer, filepath.Join(dir, "jwks.json"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + backend + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				return r
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("registry did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// DockerConfig writes a Docker config holding r's credentials and returns
// its directory, for DOCKER_CONFIG.
func (r *Registry) DockerConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+r.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs a client and returns its standard output.
func Run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
