package scm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/scan/secrets"
	"github.com/rampartsec/rampart/internal/scan/source"
	"github.com/rampartsec/rampart/internal/testenv"
)

// BenchmarkScanPush_1MB times push protection's scan of a push bringing
// 1 MB of new source code in 40 files (the objects sit in the repository
// unreferenced, as in receive-pack's quarantine): the step a push waits
// for. bench/pushprotect measures whole pushes with the real client.
func BenchmarkScanPush_1MB(b *testing.B) {
	gitBin := testenv.LookPath(b, "git")
	dir := b.TempDir()
	git := func(stdin string, args ...string) string {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = gitEnv("GIT_AUTHOR_NAME=B", "GIT_AUTHOR_EMAIL=b@x", "GIT_COMMITTER_NAME=B", "GIT_COMMITTER_EMAIL=b@x")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	git("", "init", "-q", "--bare", ".")
	commit := func(parent string, files map[string]string) string {
		idx := filepath.Join(b.TempDir(), "index")
		for name, body := range files {
			blob := git(body, "hash-object", "-w", "--stdin")
			cmd := exec.Command(gitBin, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+name)
			cmd.Dir, cmd.Env = dir, gitEnv("GIT_INDEX_FILE="+idx)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("update-index: %v %s", err, out)
			}
		}
		cmd := exec.Command(gitBin, "write-tree")
		cmd.Dir, cmd.Env = dir, gitEnv("GIT_INDEX_FILE="+idx)
		tree, err := cmd.Output()
		if err != nil {
			b.Fatal(err)
		}
		args := []string{"commit-tree", strings.TrimSpace(string(tree)), "-m", "c"}
		if parent != "" {
			args = append(args, "-p", parent)
		}
		return git("", args...)
	}
	old := commit("", map[string]string{"README.md": "# bench\n"})
	git("", "update-ref", "refs/heads/main", old)
	rnd := rand.New(rand.NewPCG(3, 4))
	files := map[string]string{}
	for i := range 40 {
		var sb strings.Builder
		for sb.Len() < (1<<20)/40 {
			fmt.Fprintf(&sb, "func f%d(ctx context.Context, n int) (string, error) {\n\tv := lookup(%q, %d)\n\treturn v, nil\n}\n",
				rnd.Uint32(), fmt.Sprint(rnd.Uint64()), rnd.IntN(1000))
		}
		files[fmt.Sprintf("pkg/file%d.go", i)] = sb.String()
	}
	next := commit(old, files)
	eng, err := secrets.New(secrets.DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for b.Loop() {
		src := source.Git(dir, source.GitOptions{Include: []string{next}, Exclude: []string{old}, ExcludeRefs: true})
		fs, _, st, err := eng.ScanSource(context.Background(), src, 0)
		if err != nil || len(fs) != 0 || st.Files != 40 {
			b.Fatalf("scan: %v, %d findings, %d files", err, len(fs), st.Files)
		}
	}
}
