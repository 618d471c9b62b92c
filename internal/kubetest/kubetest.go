// Package kubetest runs a real Kubernetes control plane for tests, as
// plain processes on the loopback interface: etcd v3.7.0,
// kube-apiserver, kube-controller-manager and kube-scheduler v1.37.2 and
// kwok v0.8.0 managing one fake node. tools/k8s/build.sh builds them from
// the Go module proxy into .cache/k8s-v1.37.2/ at the repository root
// (RAMPART_K8S_BIN overrides the directory); .ci/run does so before the
// tests. When they are missing a test skips, or fails under CI=true.
//
// Pods are scheduled onto the fake node and kwok reports them running,
// but nothing runs in them: pod, service and node addresses are fake and
// tests must never connect to them. Webhooks must use a url on 127.0.0.1
// with a caBundle, never a service reference. The API server presents a
// bearer token to every webhook: the content of WebhookTokenFile (write
// it with SetWebhookToken before the webhook is first called).
//
// Start a cluster once per test package and share it:
//
//	var cluster kubetest.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		cluster.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		c := cluster.Get(t) // started on first use
//		ns := c.Namespace(t, "x", nil)
//		…
//	}
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/testenv"
)

// Versions of the control plane.
const (
	KubernetesVersion = "v1.37.2"
	KwokVersion       = "v0.8.0"
)

// Binaries the cluster needs.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// FakeNode is the name of the node kwok manages.
const FakeNode = "kwok-node-0"

// BinDir returns the directory holding the binaries: $RAMPART_K8S_BIN,
// else .cache/k8s-v1.37.2 at the root of the module the working
// directory is in. The error says what is missing and how to build it.
func BinDir() (string, error) {
	dir := os.Getenv("RAMPART_K8S_BIN")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".cache", "k8s-"+KubernetesVersion)
	}
	var missing []string
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return dir, fmt.Errorf("%s not in %s: run tools/k8s/build.sh (15–18 minutes the first time)", strings.Join(missing, ", "), dir)
	}
	return dir, nil
}

// moduleRoot finds the directory of the go.mod of module
// github.com/rampartsec/rampart above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/rampartsec/rampart\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("kubetest: not inside the rampart module")
		}
		dir = parent
	}
}

// Options tune a cluster.
type Options struct {
	// BinDir holds the binaries (BinDir() when empty).
	BinDir string
	// KwokStages are the kwok Stage files (node and pod lifecycles);
	// empty starts no kwok and no fake node.
	KwokStages []string
	// Log receives progress lines; may be nil.
	Log func(format string, args ...any)
}

// Cluster is a running control plane.
type Cluster struct {
	// URL is the API server's address (https://127.0.0.1:PORT).
	URL string
	// Token is an administrator's bearer token (group system:masters).
	Token string
	// CAFile verifies the API server's certificate.
	CAFile string
	// Kubeconfig is an administrator's kubeconfig.
	Kubeconfig string
	// WebhookTokenFile holds the bearer token the API server presents to
	// every admission webhook.
	WebhookTokenFile string

	dir    string
	ownDir bool
	procs  []*proc
	client *http.Client
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a control plane in a new temporary directory and waits
// until the API server is ready and the default service account exists.
// Stop it with Stop.
func Start(ctx context.Context, opt Options) (_ *Cluster, err error) {
	if opt.BinDir == "" {
		if opt.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	logf := opt.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, ownDir: true}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, c.logTails())
			c.Stop()
		}
	}()
	started := time.Now()
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	c.Token = hex.EncodeToString(tok[:])
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	c.URL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	file := func(name, content string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(content), 0o600)
	}

	// Keys and files of the API server.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saKey, err := file("sa.key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	if err != nil {
		return nil, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	saPub, err := file("sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	if err != nil {
		return nil, err
	}
	tokens, err := file("tokens.csv", c.Token+`,admin,admin-uid,"system:masters"`+"\n")
	if err != nil {
		return nil, err
	}
	if c.WebhookTokenFile, err = file("webhook-token", "unset"); err != nil {
		return nil, err
	}
	webhookKubeconfig, err := file("webhook-kubeconfig.yaml", fmt.Sprintf(`apiVersion: v1
kind: Config
users:
- name: '*'
  user:
    tokenFile: %s
`, c.WebhookTokenFile))
	if err != nil {
		return nil, err
	}
	admissionConfig, err := file("admission.yaml", fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %[1]s
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %[1]s
`, webhookKubeconfig))
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "pki")
	c.CAFile = filepath.Join(certDir, "apiserver.crt")
	if c.Kubeconfig, err = file("admin.kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, c.URL, c.CAFile, c.Token)); err != nil {
		return nil, err
	}

	bin := func(name string) string { return filepath.Join(opt.BinDir, name) }
	if err := c.start("etcd", bin("etcd"),
		"--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", etcdPeer),
		"--unsafe-no-fsync", "--log-level=error"); err != nil {
		return nil, err
	}
	if err := c.start("kube-apiserver", bin("kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClient),
		fmt.Sprintf("--secure-port=%d", apiPort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--cert-dir="+certDir, "--token-auth-file="+tokens,
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none", "--admission-control-config-file="+admissionConfig, "--allow-privileged=true",
		"--v=1"); err != nil {
		return nil, err
	}
	c.client = &http.Client{Timeout: 30 * time.Second}
	if err := c.waitReady(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	logf("kube-apiserver ready at %s after %s", c.URL, time.Since(started).Round(time.Millisecond))
	if err := c.start("kube-controller-manager", bin("kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file="+saKey, "--root-ca-file="+c.CAFile,
		"--use-service-account-credentials=false", "--v=1"); err != nil {
		return nil, err
	}
	if err := c.start("kube-scheduler", bin("kube-scheduler"),
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=1"); err != nil {
		return nil, err
	}
	if len(opt.KwokStages) > 0 {
		if err := c.start("kwok", bin("kwok"), "--kubeconfig="+c.Kubeconfig, "--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--node-ip=127.0.0.1",
			"--server-address=127.0.0.1:0", "--config="+strings.Join(opt.KwokStages, ",")); err != nil {
			return nil, err
		}
		node := map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": FakeNode,
			"annotations": map[string]string{"kwok.x-k8s.io/node": "fake"}, "labels": map[string]string{"type": "kwok", "kubernetes.io/hostname": FakeNode}},
			"spec": map[string]any{}}
		if status, body, err := c.Do(ctx, "POST", "/api/v1/nodes", node); err != nil || status != http.StatusCreated {
			return nil, fmt.Errorf("create node %s: %d %s %v", FakeNode, status, body, err)
		}
	}
	if err := c.waitServiceAccount(ctx, "default", 60*time.Second); err != nil {
		return nil, err
	}
	logf("control plane ready after %s", time.Since(started).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) start(name, path string, args ...string) error {
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.dir
	// A process group of its own, so that a Ctrl-C in the terminal running
	// the tests does not reach it before Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// exited reports a process of the cluster that has ended.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v", p.name, p.cmd.ProcessState)
		default:
		}
	}
	return nil
}

// logTails returns the end of every process's log, for errors.
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, p := range c.procs {
		data, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "\n--- %s log (end) ---\n%s", p.name, data)
	}
	return b.String()
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		if err := c.exited(); err != nil {
			return err
		}
		if c.client.Transport == nil {
			if pemData, err := os.ReadFile(c.CAFile); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pemData) {
					c.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
						MaxIdleConnsPerHost: 16}
				}
			}
		}
		if c.client.Transport != nil {
			status, body, err := c.Do(ctx, "GET", "/readyz", nil)
			if err == nil && status == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s %v", status, body, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s: %s", limit, last)
}

func (c *Cluster) waitServiceAccount(ctx context.Context, namespace string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := c.exited(); err != nil {
			return err
		}
		status, _, err := c.Do(ctx, "GET", "/api/v1/namespaces/"+namespace+"/serviceaccounts/default", nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("no default service account in %s after %s", namespace, limit)
}

// Stop ends every process of the cluster (by process id: SIGTERM, then
// SIGKILL after ten seconds) and removes its directory.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	c.procs = nil
	if c.ownDir {
		_ = os.RemoveAll(c.dir)
	}
}

// Do sends a request to the API server as the administrator; body is
// encoded as JSON unless it is nil or []byte.
func (c *Cluster) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	r, err := c.do(ctx, method, path, body)
	return r.Status, r.Body, err
}

func (c *Cluster) do(ctx context.Context, method, path string, body any) (Result, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return Result{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return Result{Status: resp.StatusCode, Body: data, Header: resp.Header}, err
}

// Result is a finished API call.
type Result struct {
	Status int
	Body   []byte
	Header http.Header
}

// Warnings are the warnings the API server sent (from admission
// webhooks, deprecations), without the "299 - " code and quotes.
func (r Result) Warnings() []string {
	var out []string
	for _, w := range r.Header.Values("Warning") {
		w = strings.TrimPrefix(w, "299 - ")
		if u, err := strconv.Unquote(w); err == nil {
			w = u
		}
		out = append(out, w)
	}
	return out
}

// Status is the metav1.Status the API server answers errors with.
type Status struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Code    int    `json:"code"`
}

// Message is the message of an error answer.
func (r Result) Message() string {
	var s Status
	_ = json.Unmarshal(r.Body, &s)
	return s.Message
}

// Call sends a request as the administrator, failing the test when it
// cannot be sent.
func (c *Cluster) Call(t testing.TB, method, path string, body any) Result {
	t.Helper()
	r, err := c.do(t.Context(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Must sends a request and fails the test unless the status is want.
func (c *Cluster) Must(t testing.TB, want int, method, path string, body any) Result {
	t.Helper()
	r := c.Call(t, method, path, body)
	if r.Status != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// Namespace creates a namespace with labels, waits for its default
// service account (pods cannot be created before), and deletes it when
// the test ends.
func (c *Cluster) Namespace(t testing.TB, name string, labels map[string]string) string {
	t.Helper()
	c.Must(t, http.StatusCreated, "POST", "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": labels}})
	t.Cleanup(func() {
		_, _, _ = c.Do(context.Background(), "DELETE", "/api/v1/namespaces/"+name, nil)
	})
	if err := c.waitServiceAccount(t.Context(), name, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return name
}

// Eventually polls cond every 100 ms until it holds or limit passes.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SetWebhookToken writes the bearer token the API server presents to
// webhooks. The API server reads it when it first calls a webhook of a
// given configuration (and again every minute).
func (c *Cluster) SetWebhookToken(t testing.TB, token string) {
	t.Helper()
	if err := os.WriteFile(c.WebhookTokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Shared is a cluster started on first use and shared by the tests of a
// package; TestMain stops it.
type Shared struct {
	mu      sync.Mutex
	c       *Cluster
	err     error
	started bool
}

// Get returns the package's cluster, starting it on first use. Missing
// binaries skip the test (fail it under CI=true); a cluster that does
// not start fails it.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	if _, err := BinDir(); err != nil {
		testenv.Missing(t, "Kubernetes control plane: "+err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		var stages []string
		kwok := testenv.GoModule(t, "sigs.k8s.io/kwok", KwokVersion)
		for _, f := range []string{"node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
			"pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml"} {
			stages = append(stages, filepath.Join(kwok, "kustomize", "stage", filepath.FromSlash(f)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.c, s.err = Start(ctx, Options{KwokStages: stages, Log: t.Logf})
	}
	if s.err != nil {
		t.Fatalf("start the Kubernetes control plane: %v", s.err)
	}
	return s.c
}

// Stop stops the cluster if it was started.
func (s *Shared) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		s.c.Stop()
		s.c = nil
	}
}
