package cli

import (
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// `rampart up` lets the heap grow to five times what is live unless the
// operator says otherwise with --gc-percent or $GOGC; nonsense is refused.
func TestApplyGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(before); debug.SetMemoryLimit(limit) })
	const noLimit = math.MaxInt64
	env := func(gogc, gomemlimit string) func(string) string {
		return func(k string) string {
			switch k {
			case "GOGC":
				return gogc
			case "GOMEMLIMIT":
				return gomemlimit
			}
			return ""
		}
	}
	mem := func() int64 { return 8 << 30 }
	for _, tc := range []struct {
		name      string
		flagGiven bool
		percent   int
		gogc      string
		memlimit  string
		want      int   // the target afterwards; 0: an error
		wantLimit int64 // the soft memory limit afterwards
	}{
		{"default, with half the memory as a soft limit", false, 0, "", "", defaultGCPercent, 4 << 30},
		{"default, GOMEMLIMIT set", false, 0, "", "1GiB", defaultGCPercent, noLimit},
		{"GOGC wins over the default", false, 0, "150", "", 100, noLimit},
		{"the flag wins over GOGC", true, 250, "150", "", 250, noLimit},
		{"flag", true, 50, "", "", 50, noLimit},
		{"too small", true, 0, "", "", 0, noLimit},
		{"negative", true, -1, "", "", 0, noLimit},
		{"too large", true, 1 << 20, "", "", 0, noLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100) // as the runtime leaves it for GOGC=100
			debug.SetMemoryLimit(noLimit)
			err := applyGCPercent(tc.flagGiven, tc.percent, env(tc.gogc, tc.memlimit), mem)
			got := debug.SetGCPercent(100)
			if l := debug.SetMemoryLimit(noLimit); l != tc.wantLimit {
				t.Errorf("soft memory limit %d, want %d", l, tc.wantLimit)
			}
			switch {
			case tc.want == 0:
				if err == nil || !strings.Contains(err.Error(), "--gc-percent") || got != 100 {
					t.Fatalf("err %v, target %d: want an error naming the flag and the target left alone", err, got)
				}
			case err != nil || got != tc.want:
				t.Fatalf("err %v, target %d, want %d", err, got, tc.want)
			}
		})
	}
}

// The memory a process may use is the machine's unless a cgroup limits it
// to less; "max" and missing files mean no cgroup limit.
func TestCgroupLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    int64
	}{{"max\n", 0}, {"1073741824\n", 1 << 30}, {"garbage", 0}, {"-1", 0}} {
		p := dir + "/limit"
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := cgroupLimit(p); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.content, got, tc.want)
		}
	}
	if got := cgroupLimit(dir + "/missing"); got != 0 {
		t.Errorf("missing file: %d", got)
	}
	if memoryAvailable() <= 0 {
		t.Error("this machine's memory is unknown")
	}
}
