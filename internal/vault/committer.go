package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// committer batches writes into durable transactions (group commit): a
// write waits until its batch is on disk, and one fsync serves every write
// of the batch. Each write runs inside a savepoint of its own, so one that
// fails is undone alone and the others commit. Audit entries of reads go
// through it too, so a read returns its value only once its audit entry is
// durable; a batch appends them all with one read and one move of the
// audit chain's head.
//
// There is no committer goroutine: the first write to arrive when no
// commit is running commits itself, and whatever arrives meanwhile waits
// for the next commit, which the first of those waiting writes leads
// (leader/follower group commit). A write alone is committed on its own
// goroutine without a hand-off, and under load each batch costs one
// goroutine wake-up per waiting write, as before, and none for a
// committer.
type committer struct {
	db       *store.DB
	audit    *audit.Log
	maxBatch int
	// onWrite, when set, is called once a batch holding a write of the
	// vault's (not only audit entries) committed or failed, before any of
	// its writes returns: the read cache drops what it loaded before.
	onWrite func()

	mu      sync.Mutex
	queue   []*op
	leading bool // a commit runs or leadership is being handed over
}

type op struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *store.Tx) error
	rec *audit.Record // an audit entry alone (fn appends it)
	// auditOnly marks an fn that only appends audit entries (the read
	// journal's batches): it changes nothing a read loads.
	auditOnly bool
	err       chan error    // the result
	lead      chan struct{} // closed when this write is to lead the next commit
}

func newCommitter(db *store.DB, log *audit.Log) *committer {
	return &committer{db: db, audit: log, maxBatch: 128}
}

// appendAudit appends rec durably, batched with concurrent writes.
func (c *committer) appendAudit(ctx context.Context, rec audit.Record) error {
	return c.submit(ctx, &op{ctx: ctx, rec: &rec, fn: func(ctx context.Context, tx *store.Tx) error {
		// The request's context names the actor; its statements need
		// no cancellation (which costs the driver a goroutine each).
		return c.audit.AppendEachTx(context.WithoutCancel(ctx), tx, audit.Pending{Ctx: ctx, Record: rec})
	}})
}

// do runs fn in a durable transaction, batched with concurrent writes, and
// returns its error once the batch committed (or failed).
func (c *committer) do(ctx context.Context, fn func(ctx context.Context, tx *store.Tx) error) error {
	return c.submit(ctx, &op{ctx: ctx, fn: fn})
}

// doAudit is do for an fn that only appends audit entries.
func (c *committer) doAudit(ctx context.Context, fn func(ctx context.Context, tx *store.Tx) error) error {
	return c.submit(ctx, &op{ctx: ctx, fn: fn, auditOnly: true})
}

// written calls onWrite when batch holds a write of the vault's.
func (c *committer) written(batch []*op) {
	if c.onWrite == nil {
		return
	}
	for _, o := range batch {
		if o.rec == nil && !o.auditOnly {
			c.onWrite()
			return
		}
	}
}

func (c *committer) submit(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.err, o.lead = make(chan error, 1), make(chan struct{})
	c.mu.Lock()
	c.queue = append(c.queue, o)
	if c.leading {
		c.mu.Unlock()
		// Once queued the write is committed whatever happens to its
		// request: waiting is not cancelled, and a write told to lead
		// leads (the others in its batch depend on it).
		select {
		case err := <-o.err:
			return err
		case <-o.lead:
		}
	} else {
		c.leading = true
		c.mu.Unlock()
	}
	c.lead()
	return <-o.err
}

// lead commits the queue's first batch, then hands leadership to the first
// write still waiting, if any. A write that panics fails its whole batch
// (the panic goes on up its own request) without leaving the others
// waiting or the committer without a leader.
func (c *committer) lead() {
	c.mu.Lock()
	n := min(len(c.queue), c.maxBatch)
	batch := make([]*op, n)
	copy(batch, c.queue)
	k := copy(c.queue, c.queue[n:])
	clear(c.queue[k:])
	c.queue = c.queue[:k]
	c.mu.Unlock()
	committed := false
	defer func() {
		if !committed {
			c.written(batch)
			for _, o := range batch {
				select {
				case o.err <- errors.New("vault: a write in the same commit failed unexpectedly; nothing was written"):
				default:
				}
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.queue) == 0 {
			c.leading = false
			return
		}
		close(c.queue[0].lead)
	}()
	c.commit(context.Background(), batch)
	committed = true
}

// commit runs a batch in one durable transaction. It first runs every
// write straight in the transaction, the audit entries alone first and
// together (those of reads, the bulk of the traffic, never fail on their
// own); when one fails, the transaction
// is rolled back and the batch runs again with a savepoint per write, so
// the failed write is undone alone and the others commit.
func (c *committer) commit(ctx context.Context, batch []*op) {
	results := make([]error, len(batch))
	if len(batch) > 1 {
		var recs []audit.Pending
		for _, o := range batch {
			if o.rec != nil {
				recs = append(recs, audit.Pending{Ctx: o.ctx, Record: *o.rec})
			}
		}
		failed := false
		err := c.db.DurableTx(ctx, func(tx *store.Tx) error {
			failed = false // DurableTx may run this again after a retryable error
			if err := c.audit.AppendEachTx(ctx, tx, recs...); err != nil {
				failed = true
				return err
			}
			for _, o := range batch {
				if o.rec != nil {
					continue
				}
				if err := o.fn(o.ctx, tx); err != nil {
					failed = true
					return err
				}
			}
			return nil
		})
		if err == nil || !failed {
			c.written(batch)
			for _, o := range batch {
				o.err <- err
			}
			return
		}
	}
	err := c.db.DurableTx(ctx, func(tx *store.Tx) error {
		clear(results)
		if len(batch) == 1 {
			results[0] = batch[0].fn(batch[0].ctx, tx)
			return results[0]
		}
		for i, o := range batch {
			if _, err := tx.Exec(ctx, "SAVEPOINT vault_op"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if err := o.fn(o.ctx, tx); err != nil {
				results[i] = err
				if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT vault_op"); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT vault_op"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	c.written(batch)
	for i, o := range batch {
		switch {
		case results[i] != nil:
			o.err <- results[i]
		default:
			o.err <- err
		}
	}
}
