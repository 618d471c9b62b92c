package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
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
// (bench/README.md). So that a large live heap cannot grow past the memory
// there is, `rampart up` also sets a soft memory limit (unless
// $GOMEMLIMIT sets one) of memoryLimitShare of the memory the process may
// use, near which the collector runs as often as it needs to.
const defaultGCPercent = 400

// memoryLimitShare is the share of the available memory the soft limit
// allows the Go heap and runtime, leaving room for the rest (stacks of
// runc, git and the like are other processes, but the page cache and the
// kernel need some).
const memoryLimitShare = 0.9

// applyGCPercent sets the collector's target: the flag's value when given,
// else $GOGC's (the Go runtime has applied it already), else
// defaultGCPercent; and, unless $GOMEMLIMIT is set, a soft memory limit of
// memoryLimitShare of memTotal.
func applyGCPercent(flagGiven bool, percent int, getenv func(string) string, memTotal func() int64) error {
	if flagGiven && (percent < 10 || percent > 10000) {
		return fmt.Errorf("--gc-percent must be between 10 and 10000, got %d", percent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if total := memTotal(); total > 0 {
			debug.SetMemoryLimit(int64(float64(total) * memoryLimitShare))
		}
	}
	switch {
	case flagGiven:
		debug.SetGCPercent(percent)
	case getenv("GOGC") == "":
		debug.SetGCPercent(defaultGCPercent)
	}
	return nil
}

// memoryAvailable is the memory this process may use: the machine's, or
// the smallest limit of its memory cgroup and that cgroup's ancestors when
// smaller (0 when unknown).
func memoryAvailable() int64 {
	var si syscall.Sysinfo_t
	var total int64
	if syscall.Sysinfo(&si) == nil {
		total = int64(si.Totalram) * int64(si.Unit)
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	if limit := cgroupMemoryLimit("/sys/fs/cgroup", self); limit > 0 && (total == 0 || limit < total) {
		total = limit
	}
	return total
}

// cgroupMemoryLimit is the smallest memory limit set on the cgroups listed
// in procSelfCgroup (the text of /proc/self/cgroup) or their ancestors,
// under the cgroup file system mounted at root: memory.max for cgroup v2,
// memory/…/memory.limit_in_bytes for v1. 0 means no limit found. Inside a
// container the listed path may not exist (its namespace root is the
// mount's root): the root's own files count then.
func cgroupMemoryLimit(root string, procSelfCgroup []byte) int64 {
	var limit int64
	take := func(file string) {
		if l := cgroupLimit(file); l > 0 && (limit == 0 || l < limit) {
			limit = l
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(procSelfCgroup))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = root, "memory.max"
		case containsController(parts[1], "memory"):
			dir, file = path.Join(root, "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean(parts[2]); ; p = path.Dir(p) {
			take(path.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return limit
}

func containsController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// cgroupLimit reads a cgroup memory limit file: "max", a byte count, or
// cgroup v1's "unlimited" (a page-rounded 2^63-1). 0 when absent,
// unlimited or unreadable.
func cgroupLimit(file string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0
	}
	return n
}
