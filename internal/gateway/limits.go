package gateway

import (
	"math"
	"sync"
	"time"
)

// limiter is a set of token buckets keyed by client address or user, one
// per route and kind. It holds at most maxKeys buckets; full buckets idle
// for a while are dropped first.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	mu    sync.Mutex
	m     map[string]*bucket
	sweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxLimiterKeys = 100_000

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	b := float64(burst)
	if b <= 0 {
		b = math.Max(1, math.Ceil(2*rate))
	}
	return &limiter{rate: rate, burst: b, m: map[string]*bucket{}}
}

// allow takes a token for key, or returns how long until one is free.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= maxLimiterKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[key] = b
	} else {
		b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	}
	if now.Sub(l.sweep) > time.Minute {
		l.sweep = now
		l.evict(now)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// evict drops buckets that have refilled (their key is as good as new);
// if that frees nothing, half of the buckets go.
func (l *limiter) evict(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.m {
		if now.Sub(b.last) >= full {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxLimiterKeys {
		n := 0
		for k := range l.m {
			if n%2 == 0 {
				delete(l.m, k)
			}
			n++
		}
	}
}
