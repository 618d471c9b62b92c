// Package transittest runs a real HashiCorp Vault dev server (built by
// tools/vaultserver/build.sh) for tests of the Transit keyring: in memory,
// on 127.0.0.1, with the Transit engine mounted at transit/, killed when
// the test ends. Without the binary the test skips, or fails under CI=true.
package transittest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rampartsec/rampart/internal/testenv"
)

// VaultVersion is the HashiCorp Vault server tools/vaultserver/build.sh
// builds into .cache/vault-VERSION/vault.
const VaultVersion = "v1.19.0"

// RootToken is the dev server's root token.
const RootToken = "rampart-test-root"

// Server is a real HashiCorp Vault dev server (in memory) with the Transit
// engine mounted at transit/.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartVault runs the Vault server built by tools/vaultserver/build.sh
// until the test ends.
func StartVault(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("RAMPART_TEST_VAULT_BIN")
	if bin == "" {
		_, file, _, _ := runtime.Caller(0)
		bin = filepath.Join(filepath.Dir(file), "..", "..", "..", "..", ".cache", "vault-"+VaultVersion, "vault")
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "a HashiCorp Vault server at "+bin+" (run bash tools/vaultserver/build.sh)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Addr: "http://" + addr, out: &syncBuffer{}}
	s.cmd = exec.Command(bin, "server", "-dev", "-dev-root-token-id="+RootToken, "-dev-listen-address="+addr, "-dev-no-store-token")
	s.cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "VAULT_LOG_LEVEL=warn"}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c := s.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.Sys().Health()
		if err == nil && h.Initialized && !h.Sealed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not start: %v\n%s", err, s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	return s
}

// Client is a root client of the server.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(RootToken)
	return c
}

// Stop kills the server (idempotent).
func (s *Server) Stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_ = s.cmd.Wait()
	}
}

// CPUTime is the CPU time (user and system) the server process has used,
// from /proc (Linux; clock ticks of 1/100 s).
func (s *Server) CPUTime() (time.Duration, error) { return ProcessCPU(s.cmd.Process.Pid) }

// ProcessCPU is the CPU time (user and system) process pid has used, from
// /proc (Linux; clock ticks of 1/100 s).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
