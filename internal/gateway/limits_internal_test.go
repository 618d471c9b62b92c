package gateway

import (
	"fmt"
	"testing"
	"time"
)

// At its cap a limiter makes room by dropping the least recently used
// bucket: a client that keeps sending stays limited however many new
// addresses come by, and the limiter never holds more than its cap.
func TestLimiter_EvictsLeastRecentlyUsedAtCap(t *testing.T) {
	l := newLimiter(0.01, 1)
	l.max = 50
	now := time.Unix(1_700_000_000, 0)
	if ok, _ := l.allow("attacker", now); !ok {
		t.Fatal("first request refused")
	}
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		l.allow(fmt.Sprint("passer-by-", i), now)
		if ok, _ := l.allow("attacker", now); ok {
			t.Fatalf("the limited client got through after %d other addresses filled the limiter", i+1)
		}
		if len(l.m) > l.max {
			t.Fatalf("%d buckets, cap %d", len(l.m), l.max)
		}
	}
	// Buckets idle long enough to have refilled go at the next sweep.
	now = now.Add(2 * time.Minute)
	l.allow("attacker", now)
	if len(l.m) != 1 {
		t.Errorf("%d buckets after everyone but one client went idle, want 1", len(l.m))
	}
}

// The per-IP check does not allocate for a client it knows, IPv4 or IPv6.
func TestLimiter_AllowIPDoesNotAllocate(t *testing.T) {
	l := newLimiter(1e9, 1e9)
	now := time.Now()
	for _, ip := range []string{"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"} {
		l.allowIP(ip, now)
		if n := testing.AllocsPerRun(100, func() { l.allowIP(ip, now) }); n != 0 {
			t.Errorf("allowIP(%s): %v allocations", ip, n)
		}
	}
}
