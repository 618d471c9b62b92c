// Package executortest is the contract suite every pipeline.Executor
// passes (the container and host executors).
package executortest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/pipeline"
)

// Run checks e against the executor contract.
func Run(t *testing.T, e pipeline.Executor) {
	dir := filepath.Join(t.TempDir(), "ws")
	ws, err := e.Workspace(dir, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ws.Cleanup(); err != nil {
			t.Error(err)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("from the checkout\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ws.UID >= 0 {
		os.Chown(filepath.Join(dir, "input.txt"), ws.UID, ws.GID)
	}
	n := 0
	exec := func(ctx context.Context, script string, env ...string) (pipeline.ExecResult, string) {
		t.Helper()
		n++
		var out bytes.Buffer
		res, err := e.Exec(ctx, pipeline.ExecSpec{ID: strings.ReplaceAll(t.Name(), "/", "-") + "-" + string(rune('a'+n)),
			Workspace: dir, Script: script, Env: env, Output: &out})
		if err != nil {
			t.Fatalf("Exec(%q): %v", script, err)
		}
		return res, out.String()
	}
	tests := []struct {
		name   string
		script string
		env    []string
		exit   int
		want   string
	}{
		{"output and exit 0", "echo hello; echo oops >&2", nil, 0, "hello\noops\n"},
		{"exit code", "exit 3", nil, 3, ""},
		{"stops at the first failure", "false\necho not reached", nil, 1, ""},
		{"env passed", `echo "$GREETING"`, []string{"GREETING=hi there"}, 0, "hi there\n"},
		{"workspace is the working directory", "cat input.txt && echo made > output.txt && cat output.txt", nil, 0, "from the checkout\nmade\n"},
		{"ansi kept", `printf '\033[31mred\033[0m\n'`, nil, 0, "\x1b[31mred\x1b[0m\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out := exec(t.Context(), tt.script, tt.env...)
			if res.ExitCode != tt.exit || out != tt.want {
				t.Errorf("exit %d output %q; want %d %q", res.ExitCode, out, tt.exit, tt.want)
			}
		})
	}
	t.Run("killed at timeout with its children", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, _ := exec(ctx, "sleep 30 & sleep 30")
		if !res.Killed || res.ExitCode == 0 || time.Since(start) > 10*time.Second {
			t.Errorf("result %+v after %v", res, time.Since(start))
		}
	})
}
