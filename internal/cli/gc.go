package cli

import (
	"fmt"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target `rampart up` sets
// when neither --gc-percent nor $GOGC says otherwise: the heap may grow to
// five times what is live before a collection, instead of Go's twice.
// A server of Rampart's keeps a small live heap (about 20 MB serving 5,000
// vault reads a second), so this costs tens of megabytes and saves three
// quarters of the collections, each of which takes CPU from requests on a
// small machine: it is what brings the vault's read p99 under 5 ms there
// (bench/README.md).
const defaultGCPercent = 400

// applyGCPercent sets the collector's target: the flag's value when given,
// else $GOGC's (the Go runtime has applied it already), else
// defaultGCPercent.
func applyGCPercent(flagGiven bool, percent int, getenv func(string) string) error {
	if !flagGiven {
		if getenv("GOGC") != "" {
			return nil
		}
		percent = defaultGCPercent
	}
	if percent < 10 || percent > 10000 {
		return fmt.Errorf("--gc-percent must be between 10 and 10000, got %d", percent)
	}
	debug.SetGCPercent(percent)
	return nil
}
