package alerts_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// cpuTime is the CPU time this process and its waited-for children
// (git) have used so far.
func cpuTime(b *testing.B) time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// loop runs op b.N times and reports, besides wall time, the CPU time of
// one op (this process and git together): on a shared machine the wall
// time is mostly waiting for a core.
func loop(b *testing.B, size int, op func()) {
	b.SetBytes(int64(size))
	start := cpuTime(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// fixedRepo is one repository for benchmarks, whatever its id.
type fixedRepo struct{ path string }

func (f fixedRepo) RepoPath(context.Context, int64) (string, string, error) {
	return f.path, "main", nil
}

// BenchmarkScanDefaultBranch times what alerts does for a push to a
// default branch holding about 4 MB of Go-like source in 200 files (with
// a go.mod requiring a vulnerable module, a Dockerfile and three secrets):
// "alerts" is Service.ScanCommit — git archive into a temporary tree, the
// scan of every kind, and the comparison with the repository's alerts in
// one transaction (SQLite); "dir" is the scanner alone over the same tree
// already checked out, what `rampart scan DIR` does. Their ratio is what
// keeping alerts adds to a plain scan.
func BenchmarkScanDefaultBranch(b *testing.B) {
	gitBin := testenv.LookPath(b, "git")
	ctx := context.Background()
	bare, work := filepath.Join(b.TempDir(), "repo.git"), b.TempDir()
	git := func(dir string, args ...string) {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = gitEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("", "init", "-q", "--bare", "-b", "main", bare)
	git(work, "init", "-q", "-b", "main")
	rnd := rand.New(rand.NewPCG(5, 6))
	size := 0
	for i := range 200 {
		var sb strings.Builder
		fmt.Fprintf(&sb, "package p%d\n\nimport \"fmt\"\n\n", i%20)
		for sb.Len() < 20<<10 {
			fmt.Fprintf(&sb, "// F%d computes a value from its input.\nfunc F%d(x int) string {\n\ty := x * %d\n\treturn fmt.Sprintf(\"%%d-%x\", y)\n}\n\n",
				rnd.IntN(1e6), rnd.IntN(1e6), rnd.IntN(1000), rnd.Uint64())
		}
		if i%70 == 3 {
			sb.WriteString("const " + awsKey(uint64(i)) + "\n")
		}
		p := filepath.Join(work, fmt.Sprintf("pkg%02d", i%20), fmt.Sprintf("f%03d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		size += sb.Len()
	}
	for name, body := range map[string]string{"go.mod": goMod("1.1.0"), "Dockerfile": dockerfile} {
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	git(work, "add", "-A")
	git(work, "commit", "-q", "-m", "bench tree")
	git(work, "push", "-q", bare, "HEAD:refs/heads/main")
	out, err := exec.Command(gitBin, "-C", work, "rev-parse", "HEAD").Output()
	if err != nil {
		b.Fatal(err)
	}
	commit := strings.TrimSpace(string(out))

	db := storetest.OpenSQLite(b)
	if err := db.Migrate(ctx, events.Migrations, audit.Migrations, identity.Migrations, boards.Migrations, alerts.Migrations); err != nil {
		b.Fatal(err)
	}
	sealer, err := keyring.FromKey(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	l := audit.New(db, nil)
	ids, err := identity.New(identity.Deps{DB: db, Audit: l, Sealer: sealer, Logger: logging.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	bus := events.New(db, logging.Discard(), nil)
	items, err := boards.New(boards.Deps{DB: db, IDs: ids, Audit: l, Events: bus, Logger: logging.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	advPath := filepath.Join(b.TempDir(), "advisories.db")
	advisories(b, advPath)
	scanners := &alerts.LocalScanner{AdvisoryPath: advPath}
	b.Cleanup(func() { scanners.Close() })
	svc, err := alerts.New(alerts.Deps{DB: db, IDs: ids, Audit: l, Events: bus, Logger: logging.Discard(), Scanner: scanners.Scanner,
		WorkItems: items, Repos: fixedRepo{bare}, TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	owner, err := ids.CreateUser(ctx, identity.NewUser{Username: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	org, err := ids.CreateOrg(ctx, owner.ID, "acme", "")
	if err != nil {
		b.Fatal(err)
	}
	repo := alerts.Repo{ID: 7, Name: "acme/shop", Org: org}
	first, err := svc.ScanCommit(ctx, repo, commit)
	if err != nil {
		b.Fatal(err)
	}
	if first.Opened < 5 { // three secrets, the vulnerability, the Dockerfile's checks
		b.Fatalf("the first scan opened %d alerts: %+v", first.Opened, first)
	}
	sc, err := scanners.Scanner(ctx)
	if err != nil {
		b.Fatal(err)
	}
	opts := scan.Options{Kinds: scan.AllKinds, MaxFileSize: 10 << 20, Workers: 2}

	b.Run("alerts", func(b *testing.B) {
		loop(b, size, func() {
			res, err := svc.ScanCommit(ctx, repo, commit)
			if err != nil || res.Findings != first.Findings || res.Opened+res.Fixed != 0 {
				b.Fatalf("scan: %+v, %v", res, err)
			}
		})
	})
	b.Run("dir", func(b *testing.B) {
		loop(b, size, func() {
			rep, err := sc.Dir(ctx, work, opts)
			if err != nil || len(rep.Findings) < first.Findings {
				b.Fatalf("scan: %d findings, %v", len(rep.Findings), err)
			}
		})
	})
}
