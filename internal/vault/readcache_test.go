package vault_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/vault"
)

// Reads are served from a cache of the rows they load; every change made
// in this process shows in the very next read (a new version, a
// rollback, a revoked policy, a deleted secret), and a change another
// replica makes shows within a second.
func TestRead_CacheNeverHidesAChange(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		const ref = "acme/web/prod/API_KEY"
		e.set(t, ref, "value-1")
		e.grant(t, "readers", []string{"web/prod/*"}, "user:olivia")
		rd := reader(e.owner)
		want := func(step, value string) {
			t.Helper()
			for range 3 { // warm the cache, then read from it
				if got, err := e.read(t, rd, ref, 0); err != nil || got != value {
					t.Fatalf("%s: read %q %v, want %q", step, got, err, value)
				}
			}
		}
		want("first", "value-1")
		e.set(t, ref, "value-2")
		want("after a new version", "value-2")
		if _, _, err := e.v.Rollback(ctx, mustRef(t, ref), 1); err != nil {
			t.Fatal(err)
		}
		want("after a rollback", "value-1")

		// Another replica on the same database: its changes show here
		// within the cache's second.
		b := e.start(t, e.ring, false)
		if _, _, err := b.Set(ctx, mustRef(t, ref), vault.Write{Value: vault.NewValue([]byte("value-3"))}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			got, err := e.read(t, rd, ref, 0)
			if err == nil && got == "value-3" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("another replica's new version is not read here after 3 s: %q %v", got, err)
			}
			time.Sleep(50 * time.Millisecond)
		}

		if err := e.v.DeletePolicy(ctx, "acme", "readers"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.read(t, rd, ref, 0); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("read after the policy was deleted: %v, want forbidden", err)
		}
		e.grant(t, "readers", []string{"web/prod/*"}, "user:olivia")
		want("granted again", "value-3")
		if err := e.v.Delete(ctx, mustRef(t, ref)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.read(t, rd, ref, 0); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("read after the secret was deleted: %v, want not found", err)
		}
	})
}
