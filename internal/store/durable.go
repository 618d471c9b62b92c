package store

import (
	"context"
	"time"
)

// DurableTx is Tx whose commit is on stable storage when it returns, even
// after a power loss. PostgreSQL commits are durable already
// (synchronous_commit=on). SQLite runs with synchronous=NORMAL, which
// survives a crash of the process but may lose the last commits on a power
// loss; DurableTx commits on a connection switched to synchronous=FULL for
// the transaction, which costs one fsync of the WAL. Callers that need many
// durable writes batch them into one DurableTx (group commit).
func (db *DB) DurableTx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.dialect != SQLite {
		return db.Tx(ctx, fn)
	}
	const attempts = 5
	var err error
	for i := range attempts {
		err = db.durable1(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
	return err
}

func (db *DB) durable1(ctx context.Context, fn func(tx *Tx) error) (err error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
		return translate(err)
	}
	// Back to the pool's setting, whatever happens to the transaction.
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=NORMAL") }()
	stx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	tx := &Tx{tx: stx, db: db}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = stx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return translate(stx.Commit())
}
