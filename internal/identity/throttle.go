package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// throttlePolicy locks sign-in attempts after repeated failures: a key
// (user name or client address) may fail Free times; every further failure
// locks it for Base·2^(n-1), at most Max. Failures are forgotten after Reset
// without one.
type throttlePolicy struct {
	UserFree, IPFree int
	Base, Max, Reset time.Duration
}

var defaultThrottle = throttlePolicy{
	UserFree: 5,
	IPFree:   20,
	Base:     time.Second,
	Max:      15 * time.Minute,
	Reset:    time.Hour,
}

func userKey(username string) string { return "user:" + username }
func ipKey(ip string) string         { return "ip:" + ip }

// checkThrottle fails with TooManyRequests while any key is locked.
func (s *Service) checkThrottle(ctx context.Context, keys ...string) error {
	now := s.now()
	for _, k := range keys {
		if k == "" || k == "ip:" {
			continue
		}
		var until int64
		err := s.db.QueryRow(ctx, "SELECT locked_until FROM login_throttle WHERE key = ?", k).Scan(&until)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if wait := time.UnixMicro(until).Sub(now); wait > 0 {
			wait = wait.Round(time.Second)
			if wait < time.Second {
				wait = time.Second
			}
			return &apperr.Error{Kind: apperr.TooManyRequests, RetryAfter: wait,
				Msg: fmt.Sprintf("too many failed sign-in attempts; try again in %s", wait)}
		}
	}
	return nil
}

// recordFailure counts a failed attempt against each key.
func (s *Service) recordFailure(ctx context.Context, user, ip string) error {
	now := s.now()
	for _, kv := range []struct {
		key  string
		free int
	}{{userKey(user), s.throttle.UserFree}, {ipKey(ip), s.throttle.IPFree}} {
		if kv.key == "ip:" || kv.key == "user:" {
			continue
		}
		err := s.db.Tx(ctx, func(tx *store.Tx) error {
			var failures, updated int64
			err := tx.QueryRow(ctx, "SELECT failures, updated_at FROM login_throttle WHERE key = ?", kv.key).Scan(&failures, &updated)
			if err != nil && !apperr.Is(err, apperr.NotFound) {
				return err
			}
			if now.Sub(time.UnixMicro(updated)) > s.throttle.Reset {
				failures = 0
			}
			failures++
			var locked time.Time
			if over := failures - int64(kv.free); over > 0 {
				d := s.throttle.Max
				if over < 30 {
					d = min(s.throttle.Max, s.throttle.Base<<(over-1))
				}
				locked = now.Add(d)
			}
			_, err = tx.Exec(ctx, `INSERT INTO login_throttle (key, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
				kv.key, failures, locked.UnixMicro(), now.UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("record failed sign-in: %w", err)
		}
	}
	return nil
}

// clearThrottle forgets a user's failures after a successful sign-in. The
// client address keeps its count: one good password does not excuse a
// spray from the same address.
func (s *Service) clearThrottle(ctx context.Context, user string) error {
	_, err := s.db.Exec(ctx, "DELETE FROM login_throttle WHERE key = ?", userKey(user))
	return err
}
