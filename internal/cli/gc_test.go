package cli

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// `rampart up` lets the heap grow to five times what is live unless the
// operator says otherwise with --gc-percent or $GOGC, and bounds it softly
// by the memory there is unless $GOMEMLIMIT does; nonsense is refused.
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
	mem := func() int64 { return 10 << 30 }
	const soft = 9 << 30 // 90 % of 10 GiB
	for _, tc := range []struct {
		name      string
		flagGiven bool
		percent   int
		gogc      string
		memlimit  string
		want      int   // the target afterwards; 0: an error
		wantLimit int64 // the soft memory limit afterwards
	}{
		{"default", false, 0, "", "", defaultGCPercent, soft},
		{"default, GOMEMLIMIT set", false, 0, "", "1GiB", defaultGCPercent, noLimit},
		{"GOGC wins over the default", false, 0, "150", "", 100, soft},
		{"the flag wins over GOGC", true, 250, "150", "", 250, soft},
		{"flag", true, 50, "", "", 50, soft},
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

// The memory a process may use is bounded by the smallest limit of its
// memory cgroup and the cgroup's ancestors, in cgroup v1 and v2; "max",
// v1's "unlimited" and missing files mean no limit.
func TestCgroupMemoryLimit(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.max", "max\n")
	write("system.slice/memory.max", "4294967296\n")             // the parent: 4 GiB
	write("system.slice/rampart.service/memory.max", "max\n")    // the unit itself: none
	write("memory/memory.limit_in_bytes", "9223372036854771712") // v1 root: unlimited
	write("memory/ci/job/memory.limit_in_bytes", "1073741824\n") // v1: 1 GiB
	write("memory/ci/memory.limit_in_bytes", "9223372036854771712")
	for _, tc := range []struct {
		name, self string
		want       int64
	}{
		{"v2: a parent's limit", "0::/system.slice/rampart.service\n", 4 << 30},
		{"v1: the cgroup's own limit", "4:memory:/ci/job\n3:cpu:/\n", 1 << 30},
		{"v1 with other controllers on the line", "4:memsw,memory:/ci/job\n", 1 << 30},
		{"both: the smaller", "4:memory:/ci/job\n0::/system.slice/rampart.service\n", 1 << 30},
		{"v1 unlimited everywhere", "4:memory:/ci\n", 0},
		{"a path not in this namespace: the root's files", "0::/elsewhere/unit\n", 0},
		{"no memory cgroup", "3:cpu:/\n", 0},
		{"garbage", "nonsense\n::\n", 0},
	} {
		if got := cgroupMemoryLimit(root, []byte(tc.self)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if memoryAvailable() <= 0 {
		t.Error("this machine's memory is unknown")
	}
}
