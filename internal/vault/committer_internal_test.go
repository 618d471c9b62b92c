package vault

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestCommitter_PanicLeavesNoOneWaiting: a write that panics while it
// leads a commit takes its own request down (the panic goes on up), and
// the writes after it still commit: leadership is not lost with it.
func TestCommitter_PanicLeavesNoOneWaiting(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if _, err := db.Exec(t.Context(), "CREATE TABLE t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	c := newCommitter(db, nil)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = c.do(context.Background(), func(context.Context, *store.Tx) error { panic("boom") })
	}()
	if p := <-panicked; p == nil {
		t.Fatal("the panic did not reach the writer's goroutine")
	}
	done := make(chan error, 1)
	go func() {
		done <- c.do(context.Background(), func(ctx context.Context, tx *store.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO t (n) VALUES (1)")
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the write after the panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write after a panic never committed: leadership was lost")
	}
	var n int
	if err := db.QueryRow(t.Context(), "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v", n, err)
	}
}
