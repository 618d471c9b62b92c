package pipeline_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/pipeline"
)

// syncBuffer is a bytes.Buffer safe for the runner's goroutines.
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

// A remote runner (`rampart runner`, the CLI in this process) registers
// with a runner-scoped token, long-polls for the job of a server that runs
// none itself, runs it and streams its log back; a token without the
// runner scope is refused.
func TestE2E_RemoteRunner(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Workers = -1 }))
	var tok httpapi.CreatedToken
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens",
		httpapi.CreateTokenRequest{Name: "runner", Scopes: []string{"runner"}}).Decode(t, &tok)
	var readTok httpapi.CreatedToken
	w.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/user/tokens",
		httpapi.CreateTokenRequest{Name: "reader", Scopes: []string{"pipeline:read"}}).Decode(t, &readTok)
	w.a.Client(t, readTok.Secret).Must(http.StatusForbidden, "POST", httpapi.Prefix+"/runners/jobs",
		pipeline.RunnerClaimRequest{Runner: "x", Executors: []string{"host"}, WaitSeconds: 1})
	w.a.Client(t, tok.Secret).Must(http.StatusBadRequest, "POST", httpapi.Prefix+"/runners/jobs",
		pipeline.RunnerClaimRequest{Runner: "bad name", Executors: []string{"host"}})

	w.push(t, map[string]string{"hello.txt": "from the repository\n",
		pipeline.DefinitionPath: "jobs:\n  remote:\n    executor: host\n    steps:\n      - run: cat hello.txt; echo \"on $RAMPART_REPO\"\n      - run: exit 3\n      - run: echo never\n"})

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, cli.Env{Args: []string{"runner", "--server", w.a.URL, "--token", tok.Secret, "--name", "edge-1",
			"--executor", "host", "--work", t.TempDir(), "--once"}, Stdout: &stderr, Stderr: &stderr})
	}()
	r := w.waitRun(t, 1)
	if code := <-done; code != 0 {
		t.Fatalf("runner exited %d: %s", code, stderr.String())
	}
	j := jobNamed(t, r, "remote")
	if j.Runner != "remote:edge-1" || j.Status != pipeline.StatusFailed || j.ExitCode != 3 {
		t.Errorf("job %+v; want failed with exit 3 on remote:edge-1", j)
	}
	if j.Steps[0].Status != pipeline.StatusSuccess || j.Steps[1].Status != pipeline.StatusFailed || j.Steps[2].Status != pipeline.StatusSkipped {
		t.Errorf("steps %+v", j.Steps)
	}
	log := w.log(t, 1, j)
	for _, want := range []string{"from the repository", "on acme/app", "on runner edge-1"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
