package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

// `rampart up` lets the heap grow to five times what is live unless the
// operator says otherwise with --gc-percent or $GOGC; nonsense is refused.
func TestApplyGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	env := func(gogc string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return gogc
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name      string
		flagGiven bool
		percent   int
		gogc      string
		want      int // the target afterwards; 0: an error
	}{
		{"default", false, 0, "", defaultGCPercent},
		{"GOGC wins over the default", false, 0, "150", 100},
		{"the flag wins over GOGC", true, 250, "150", 250},
		{"flag", true, 50, "", 50},
		{"too small", true, 0, "", 0},
		{"negative", true, -1, "", 0},
		{"too large", true, 1 << 20, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100) // as the runtime leaves it for GOGC=100
			err := applyGCPercent(tc.flagGiven, tc.percent, env(tc.gogc))
			got := debug.SetGCPercent(100)
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
