package pipeline_test

import (
	"bytes"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/pipeline"
)

// BenchmarkNoopJob measures the overhead of a job that does nothing, from
// the run being queued to its job's container finishing (the server's own
// timestamps: created_at of the run, finished_at of the job), through the
// whole path: manual run → store → scheduler → claim → workspace (tmpfs)
// → git checkout → runc → log → status. It reports the median and the
// ratio to the floor: runc running `true` directly in the same process.
func BenchmarkNoopJob(b *testing.B) {
	requireContainers(b)
	for _, executor := range []string{"container", "host"} {
		b.Run(executor, func(b *testing.B) {
			w := newWorld(b, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = executor }))
			w.push(b, map[string]string{pipeline.DefinitionPath: "on: {manual: true}\njobs: {noop: {steps: [{run: 'true'}]}}\n"})
			var took []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var r pipeline.RunJSON
				w.admin.Must(http.StatusCreated, "POST", runsPath, pipeline.StartRunRequest{}).Decode(b, &r)
				r = w.waitRun(b, r.Number)
				if r.Status != pipeline.StatusSuccess {
					b.Fatalf("run %+v", r)
				}
				took = append(took, r.Jobs[0].FinishedAt.Sub(r.CreatedAt))
			}
			b.StopTimer()
			med := median(took)
			b.ReportMetric(float64(med.Milliseconds()), "ms-queued-to-finished-median")
			floor := runcFloor(b, 5)
			b.ReportMetric(float64(floor.Milliseconds()), "ms-runc-true-median")
			if floor > 0 {
				b.ReportMetric(float64(med)/float64(floor), "x-runc-floor")
			}
			b.Logf("%s executor: no-op job queued→finished median %v over %d runs; runc true alone %v", executor, med, len(took), floor)
		})
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// runcFloor times runc running `true` on the host's read-only root, n
// times, and returns the median.
func runcFloor(b *testing.B, n int) time.Duration {
	rt, err := container.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for i := 0; i < n; i++ {
		var out bytes.Buffer
		start := time.Now()
		res, err := rt.Run(b.Context(), container.Spec{ID: "floor-" + strconv.Itoa(i) + "-" + strconv.Itoa(os.Getpid()), Args: []string{"true"}, Stdout: &out, Stderr: &out})
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("runc true: %v %+v %s", err, res, out.String())
		}
		took = append(took, time.Since(start))
	}
	return median(took)
}
