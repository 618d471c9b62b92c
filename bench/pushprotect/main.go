// Command pushprotect measures what push protection adds to a git push:
// it runs Rampart in process (SQLite in a temporary directory, plain
// HTTP on 127.0.0.1), then pushes N commits of about SIZE bytes of new
// source code each with the real git client, and reports, per push, the
// wall time of `git push` and the time Rampart's pre-receive step took
// (all checks, and the secret scan of the new blobs alone), as read from
// the server's "pre-receive checked" log records.
//
//	go run ./bench/pushprotect [-n 50] [-size 1048576] [-files 40]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/scm"
)

func main() {
	n := flag.Int("n", 50, "pushes to time")
	size := flag.Int("size", 1<<20, "bytes of new code per push")
	files := flag.Int("files", 40, "files per push")
	flag.Parse()
	if err := run(*n, *size, *files); err != nil {
		fmt.Fprintln(os.Stderr, "pushprotect:", err)
		os.Exit(1)
	}
}

// timings collects the server's pre-receive log records.
type timings struct {
	mu     sync.Mutex
	checks []float64
	scans  []float64
}

func (t *timings) Enabled(context.Context, slog.Level) bool { return true }
func (t *timings) WithAttrs([]slog.Attr) slog.Handler       { return t }
func (t *timings) WithGroup(string) slog.Handler            { return t }
func (t *timings) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "pre-receive checked" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "checks_ms":
			t.checks = append(t.checks, a.Value.Float64())
		case "scan_ms":
			t.scans = append(t.scans, a.Value.Float64())
		}
		return true
	})
	return nil
}

func run(n, size, files int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "pushprotect-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.DataDir, cfg.TLS, cfg.AdminPassword, cfg.LogLevel = filepath.Join(dir, "data"), false, "bench-admin-password", "debug"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tm := &timings{}
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(tm), Listener: ln})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	admin, err := a.IDs.UserByName(ctx, "admin")
	if err != nil {
		return err
	}
	o, err := a.IDs.CreateOrg(ctx, admin.ID, "bench", "")
	if err != nil {
		return err
	}
	if _, err := a.SCM.CreateRepo(ctx, o, scm.NewRepo{Name: "app"}); err != nil {
		return err
	}
	tok, _, err := a.IDs.CreateToken(ctx, admin.ID, identity.NewToken{Name: "bench", Scopes: []authz.Scope{authz.ScopeRepoWrite, authz.ScopeRepoRead}})
	if err != nil {
		return err
	}
	u, _ := url.Parse(a.URL() + "/bench/app.git")
	u.User = url.UserPassword("admin", tok)
	work := filepath.Join(dir, "work")
	git := func(args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=Bench",
			"GIT_AUTHOR_EMAIL=bench@example.test", "GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@example.test")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if err := git("init", "-q", "--initial-branch=main"); err != nil {
		return err
	}
	if err := git("remote", "add", "origin", u.String()); err != nil {
		return err
	}
	loadBefore := loadAvg()
	rnd := rand.New(rand.NewPCG(1, 2))
	var walls []float64
	for i := -2; i < n; i++ { // two warm-up pushes
		for f := range files {
			p := filepath.Join(work, fmt.Sprintf("pkg%d", f%8), fmt.Sprintf("file_%d_%d.go", i+2, f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, code(rnd, size/files), 0o644); err != nil {
				return err
			}
		}
		if err := git("add", "-A"); err != nil {
			return err
		}
		if err := git("commit", "-q", "-m", fmt.Sprintf("change %d", i)); err != nil {
			return err
		}
		start := time.Now()
		if err := git("push", "-q", "origin", "main"); err != nil {
			return err
		}
		if i >= 0 {
			walls = append(walls, float64(time.Since(start).Microseconds())/1000)
		}
	}
	tm.mu.Lock()
	checks, scans := tm.checks[2:], tm.scans[2:]
	tm.mu.Unlock()
	fmt.Printf("%d pushes of %d files, %.2f MB of new code each; git %s; %d CPUs (%s/%s); load average %s before, %s after\n\n", n, files,
		float64(size)/(1<<20), gitVersion(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, loadBefore, loadAvg())
	fmt.Printf("%-38s %9s %9s %9s\n", "", "p50 ms", "p95 ms", "max ms")
	for _, row := range []struct {
		name string
		v    []float64
	}{
		{"git push (wall, client side)", walls},
		{"pre-receive: all Rampart checks", checks},
		{"  of which the secret scan", scans},
	} {
		fmt.Printf("%-38s %9.1f %9.1f %9.1f\n", row.name, pct(row.v, 50), pct(row.v, 95), pct(row.v, 100))
	}
	return nil
}

func pct(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// loadAvg is the one-minute load average ("?" where unknown): the machine
// is shared, and the figures mean little without it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func gitVersion() string {
	out, _ := exec.Command("git", "version").Output()
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "git version ")
}

var words = strings.Fields(`func return if else for range var const type struct interface map string int error nil
	ctx err value result config server client request response handler store cache index count name path
	buffer reader writer token session user order item price total limit offset query filter`)

// code makes n bytes of Go-like source text, different every time.
func code(rnd *rand.Rand, n int) []byte {
	var b strings.Builder
	b.WriteString("package bench\n\n")
	for b.Len() < n {
		fmt.Fprintf(&b, "func %s%d(%s %s) (%s, error) {\n", words[rnd.IntN(len(words))], rnd.Uint32(),
			words[rnd.IntN(len(words))], words[rnd.IntN(len(words))], words[rnd.IntN(len(words))])
		for range 3 + rnd.IntN(6) {
			fmt.Fprintf(&b, "\t%s := %s.%s(%q, %d)\n", words[rnd.IntN(len(words))], words[rnd.IntN(len(words))],
				words[rnd.IntN(len(words))], words[rnd.IntN(len(words))], rnd.IntN(100000))
		}
		b.WriteString("\treturn nil, nil\n}\n\n")
	}
	return []byte(b.String()[:n])
}
