// Package events carries typed events between Rampart's components,
// durably. A producer publishes an event inside the transaction of the
// change that caused it, so the change and its event commit together or not
// at all; a dispatcher then delivers every event at least once, in order,
// to each subscriber, remembering a cursor per subscriber in the store. A
// crash loses nothing: after a restart delivery resumes after the last
// event a subscriber acknowledged, so handlers must be idempotent.
//
// Event types are dotted names owned by their producer ("scm.push",
// "registry.image.pushed"); the payload is the producer's JSON. Consumers
// subscribe under a stable name and a list of types.
//
// With several Rampart replicas on one PostgreSQL database, each subscriber
// runs on one replica at a time, holding a lease it renews. Publishing
// transactions are serialised on PostgreSQL (an advisory lock held to
// commit), so sequence numbers become visible in commit order and no event
// can be skipped by a cursor that already moved past it.
package events

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the events schema.
var Migrations = store.EmbeddedMigrations("events", migrationFS, "migrations")

// maxPayload bounds an event's payload: events carry references and
// summaries, not blobs.
const maxPayload = 256 << 10

// Event is one published event.
type Event struct {
	Seq     int64
	Type    string
	Payload json.RawMessage
	At      time.Time
}

// Decode unmarshals the payload into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("event %d (%s): %w", e.Seq, e.Type, err)
	}
	return nil
}

// Handler processes one event. An error makes the dispatcher retry the same
// event later (with backoff); returning nil acknowledges it.
type Handler func(ctx context.Context, e Event) error

type subscription struct {
	name    string
	types   []string
	handler Handler
}

// Bus publishes and dispatches events.
type Bus struct {
	db     *store.DB
	log    *slog.Logger
	now    func() time.Time
	holder string

	mu      sync.Mutex
	subs    []*subscription
	running bool
	wake    chan struct{}

	// Poll is how often an idle subscriber looks for events it was not
	// woken for (published by another replica). Tests shorten it.
	Poll time.Duration
	// LeaseTTL is how long a subscriber's lease lasts without renewal.
	LeaseTTL time.Duration
}

// New returns a bus on db. now may be nil (time.Now).
func New(db *store.DB, log *slog.Logger, now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Bus{db: db, log: log.With("component", "events"), now: now, holder: hex.EncodeToString(b),
		wake: make(chan struct{}, 1), Poll: time.Second, LeaseTTL: 30 * time.Second}
}

// Publish records an event inside tx; it is delivered once tx commits.
func (b *Bus) Publish(ctx context.Context, tx *store.Tx, typ string, payload any) error {
	if typ == "" || len(typ) > 100 || strings.ContainsAny(typ, " \t\r\n") {
		return apperr.E(apperr.Invalid, "invalid event type %q", typ)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	if len(data) > maxPayload {
		return apperr.E(apperr.TooLarge, "%s event payload is %d bytes, over %d", typ, len(data), maxPayload)
	}
	if tx.Dialect() == store.Postgres {
		// Held to commit: publishing transactions commit in sequence order.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7061727471)"); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO events (type, payload, at) VALUES (?, ?, ?)", typ, string(data), store.Time(b.now())); err != nil {
		return fmt.Errorf("publish %s event: %w", typ, err)
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// PublishNow publishes an event in a transaction of its own, for producers
// whose change is not in the store.
func (b *Bus) PublishNow(ctx context.Context, typ string, payload any) error {
	return b.db.Tx(ctx, func(tx *store.Tx) error { return b.Publish(ctx, tx, typ, payload) })
}

// Subscribe registers handler for the given event types under a durable
// name. Subscriptions are made before Run.
func (b *Bus) Subscribe(name string, types []string, handler Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		panic("events: Subscribe after Run")
	}
	b.subs = append(b.subs, &subscription{name: name, types: slices.Clone(types), handler: handler})
}

// Run dispatches events to every subscriber until ctx ends.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	b.running = true
	subs := slices.Clone(b.subs)
	b.mu.Unlock()
	// One wake-up fans out to every subscriber.
	wakes := make([]chan struct{}, len(subs))
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-b.wake:
				for _, w := range wakes {
					select {
					case w <- struct{}{}:
					default:
					}
				}
			}
		}
	})
	for i, s := range subs {
		wg.Go(func() { b.loop(ctx, s, wakes[i]) })
	}
	wg.Wait()
	return nil
}

// loop delivers events to one subscriber while this replica holds its lease.
func (b *Bus) loop(ctx context.Context, s *subscription, wake <-chan struct{}) {
	defer b.releaseLease(s.name)
	backoff := time.Second
	for {
		held, err := b.lease(ctx, s.name)
		if err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "event lease", "subscriber", s.name, "err", err)
		}
		more := false
		if held {
			more, err = b.deliver(ctx, s)
			switch {
			case err == nil:
				backoff = time.Second
			case ctx.Err() != nil:
				return
			default:
				b.log.ErrorContext(ctx, "event handler failed; retrying", "subscriber", s.name, "err", err, "retry_in", backoff.String())
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, time.Minute)
				continue
			}
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(b.Poll):
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

const batch = 100

// deliver hands the next batch of events to s; more reports a full batch.
func (b *Bus) deliver(ctx context.Context, s *subscription) (more bool, err error) {
	var cursor int64
	err = b.db.QueryRow(ctx, "SELECT seq FROM event_cursors WHERE subscriber = ?", s.name).Scan(&cursor)
	if apperr.Is(err, apperr.NotFound) {
		// A new subscriber starts at the beginning of what is kept, so an
		// event published while it was starting is never skipped.
		cursor = 0
	} else if err != nil {
		return false, err
	}
	q := "SELECT seq, type, payload, at FROM events WHERE seq > ?"
	args := []any{cursor}
	if len(s.types) > 0 {
		q += " AND type IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(s.types)), ", ") + ")"
		for _, t := range s.types {
			args = append(args, t)
		}
	}
	rows, err := b.db.Query(ctx, q+fmt.Sprintf(" ORDER BY seq LIMIT %d", batch), args...)
	if err != nil {
		return false, err
	}
	var evs []Event
	for rows.Next() {
		var (
			e       Event
			payload string
		)
		if err := rows.Scan(&e.Seq, &e.Type, &payload, store.TimeDest(&e.At)); err != nil {
			rows.Close()
			return false, err
		}
		e.Payload = json.RawMessage(payload)
		evs = append(evs, e)
	}
	if err := rows.Close(); err != nil {
		return false, err
	}
	for _, e := range evs {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if err := b.handle(ctx, s, e); err != nil {
			return false, err
		}
		// A handled event is acknowledged even while shutting down, so a
		// restart does not deliver it again needlessly.
		if err := b.ack(context.WithoutCancel(ctx), s.name, e.Seq); err != nil {
			return false, err
		}
	}
	return len(evs) == batch, nil
}

// handle runs the handler, turning a panic into an error so that one bad
// event cannot take the dispatcher down.
func (b *Bus) handle(ctx context.Context, s *subscription, e Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler %s panicked on event %d (%s): %v", s.name, e.Seq, e.Type, p)
		}
	}()
	if err := s.handler(ctx, e); err != nil {
		return fmt.Errorf("event %d (%s): %w", e.Seq, e.Type, err)
	}
	return nil
}

func (b *Bus) ack(ctx context.Context, name string, seq int64) error {
	_, err := b.db.Exec(ctx, `INSERT INTO event_cursors (subscriber, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (subscriber) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
		name, seq, store.Time(b.now()))
	return err
}

// lease takes or renews this replica's lease on a subscriber.
func (b *Bus) lease(ctx context.Context, name string) (bool, error) {
	now := b.now()
	exp := now.Add(b.LeaseTTL)
	n, err := b.db.Exec(ctx, `UPDATE event_leases SET holder = ?, expires_at = ?
		WHERE subscriber = ? AND (holder = ? OR expires_at < ?)`, b.holder, store.Time(exp), name, b.holder, store.Time(now))
	if err != nil {
		return false, err
	}
	if n == 1 {
		return true, nil
	}
	_, err = b.db.Exec(ctx, "INSERT INTO event_leases (subscriber, holder, expires_at) VALUES (?, ?, ?)", name, b.holder, store.Time(exp))
	if apperr.Is(err, apperr.Conflict) {
		return false, nil // another replica holds it
	}
	return err == nil, err
}

func (b *Bus) releaseLease(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = b.db.Exec(ctx, "DELETE FROM event_leases WHERE subscriber = ? AND holder = ?", name, b.holder)
}

// Purge deletes events older than keep that every subscriber has passed.
func (b *Bus) Purge(ctx context.Context, keep time.Duration) (int64, error) {
	var low int64
	err := b.db.QueryRow(ctx, "SELECT COALESCE(MIN(seq), 0) FROM event_cursors").Scan(&low)
	if err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return b.db.Exec(ctx, "DELETE FROM events WHERE seq <= ? AND at < ?", low, store.Time(b.now().Add(-keep)))
}
