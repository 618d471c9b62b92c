package cli

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// defaultGCPercent is the garbage collector's target `rampart up` sets
// when neither --gc-percent nor $GOGC says otherwise: the heap may grow to
// five times what is live before a collection, instead of Go's twice.
// A server of Rampart's keeps a small live heap (about 20 MB serving 5,000
// vault reads a second), so this costs tens of megabytes and saves three
// quarters of the collections, each of which takes CPU from requests on a
// small machine: it is what brings the vault's read p99 under 5 ms there
// (bench/README.md). So that a large live heap cannot grow five times
// over, the default comes with a soft memory limit (unless $GOMEMLIMIT
// sets one): half of the memory the process may use, past which the
// collector runs as often as it needs to.
const defaultGCPercent = 400

// applyGCPercent sets the collector's target: the flag's value when given,
// else $GOGC's (the Go runtime has applied it already), else
// defaultGCPercent with a soft memory limit of half of memTotal.
func applyGCPercent(flagGiven bool, percent int, getenv func(string) string, memTotal func() int64) error {
	if !flagGiven {
		if getenv("GOGC") != "" {
			return nil
		}
		percent = defaultGCPercent
		if getenv("GOMEMLIMIT") == "" {
			if total := memTotal(); total > 0 {
				debug.SetMemoryLimit(total / 2)
			}
		}
	}
	if percent < 10 || percent > 10000 {
		return fmt.Errorf("--gc-percent must be between 10 and 10000, got %d", percent)
	}
	debug.SetGCPercent(percent)
	return nil
}

// memoryAvailable is the memory this process may use: the machine's, or
// its cgroup's limit when smaller (0 when unknown).
func memoryAvailable() int64 {
	var si syscall.Sysinfo_t
	var total int64
	if syscall.Sysinfo(&si) == nil {
		total = int64(si.Totalram) * int64(si.Unit)
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if limit := cgroupLimit(f); limit > 0 && (total == 0 || limit < total) {
			total = limit
		}
	}
	return total
}

// cgroupLimit reads a cgroup memory limit file ("max" or a byte count;
// 0 when absent, unlimited or unreadable).
func cgroupLimit(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
