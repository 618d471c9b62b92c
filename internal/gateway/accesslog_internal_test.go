package gateway

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"
)

// appendTime formats as time.Time.AppendFormat does, cached or not,
// across seconds, zones and a cache shared by several locations.
func TestAppendTime_IsAppendFormat(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	locs := []*time.Location{time.UTC, time.Local, berlin, time.FixedZone("odd", -(9*3600 + 30*60))}
	base := []time.Time{
		time.Date(2026, 11, 26, 4, 5, 6, 0, time.UTC),
		time.Date(2026, 3, 29, 0, 59, 59, 999_999_999, time.UTC), // Berlin's switch to summer time
		time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC),
		time.Date(2000, 2, 29, 23, 59, 59, 1_000_000, time.UTC),
	}
	var cache atomic.Pointer[timeStamp]
	for _, b := range base {
		for _, step := range []time.Duration{0, time.Millisecond, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond, time.Hour} {
			for _, loc := range locs {
				tm := b.Add(step).In(loc)
				want := tm.AppendFormat(nil, accessTimeLayout)
				if got := appendTime(nil, tm, &cache); !bytes.Equal(got, want) {
					t.Errorf("appendTime(%v) cached = %s, want %s", tm, got, want)
				}
				if got := appendTime([]byte("x"), tm, nil); !bytes.Equal(got[1:], want) {
					t.Errorf("appendTime(%v) = %s, want %s", tm, got[1:], want)
				}
			}
		}
	}
	// A monotonic clock reading, as time.Now carries.
	now := time.Now()
	if got, want := appendTime(nil, now, &cache), now.AppendFormat(nil, accessTimeLayout); !bytes.Equal(got, want) {
		t.Errorf("appendTime(now) = %s, want %s", got, want)
	}
}

func BenchmarkAppendTime(b *testing.B) {
	var cache atomic.Pointer[timeStamp]
	buf := make([]byte, 0, 64)
	t0 := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = appendTime(buf[:0], t0.Add(time.Duration(i)*time.Microsecond), &cache)
	}
}
