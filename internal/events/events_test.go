package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

type push struct {
	Repo string `json:"repo"`
	N    int    `json:"n"`
}

// collector records the events a subscriber saw.
type collector struct {
	mu   sync.Mutex
	seen []int
	got  chan struct{}
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1000)} }

func (c *collector) handle(ctx context.Context, e events.Event) error {
	var p push
	if err := e.Decode(&p); err != nil {
		return err
	}
	c.mu.Lock()
	c.seen = append(c.seen, p.N)
	c.mu.Unlock()
	c.got <- struct{}{}
	return nil
}

func (c *collector) wait(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.seen) >= n {
			out := append([]int(nil), c.seen...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("saw %d events, want %d", len(c.seen), n)
		}
	}
}

func publish(t *testing.T, db *store.DB, bus *events.Bus, typ string, n int) {
	t.Helper()
	if err := db.Tx(t.Context(), func(tx *store.Tx) error { return bus.Publish(t.Context(), tx, typ, push{Repo: "acme/app", N: n}) }); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, bus *events.Bus) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func TestBus_DeliversInOrderToEachSubscriber(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bus := events.New(db, logging.Discard(), nil)
		bus.Poll = 50 * time.Millisecond
		pushes, all := newCollector(), newCollector()
		bus.Subscribe("pushes", []string{"scm.push"}, pushes.handle)
		bus.Subscribe("all", nil, all.handle)
		publish(t, db, bus, "scm.push", 1) // before Run: still delivered
		run(t, bus)
		publish(t, db, bus, "scm.pr", 2)
		publish(t, db, bus, "scm.push", 3)
		if got := pushes.wait(t, 2); len(got) != 2 || got[0] != 1 || got[1] != 3 {
			t.Errorf("pushes saw %v, want [1 3]", got)
		}
		if got := all.wait(t, 3); got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Errorf("all saw %v, want [1 2 3]", got)
		}
	}, events.Migrations)
}

func TestBus_RolledBackEventIsNeverDelivered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bus := events.New(db, logging.Discard(), nil)
		bus.Poll = 50 * time.Millisecond
		c := newCollector()
		bus.Subscribe("c", nil, c.handle)
		run(t, bus)
		boom := errors.New("boom")
		err := db.Tx(t.Context(), func(tx *store.Tx) error {
			if err := bus.Publish(t.Context(), tx, "scm.push", push{N: 1}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		publish(t, db, bus, "scm.push", 2)
		if got := c.wait(t, 1); got[0] != 2 {
			t.Fatalf("saw %v, want only the committed event 2", got)
		}
	}, events.Migrations)
}

func TestBus_RetriesAFailingHandlerAndResumesAfterRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bus := events.New(db, logging.Discard(), nil)
		bus.Poll = 50 * time.Millisecond
		var mu sync.Mutex
		attempts := 0
		c := newCollector()
		bus.Subscribe("flaky", nil, func(ctx context.Context, e events.Event) error {
			mu.Lock()
			attempts++
			first := attempts == 1
			mu.Unlock()
			if first {
				return errors.New("downstream unavailable")
			}
			return c.handle(ctx, e)
		})
		publish(t, db, bus, "x", 1)
		stop := run(t, bus)
		if got := c.wait(t, 1); got[0] != 1 {
			t.Fatalf("saw %v", got)
		}
		stop()
		// A new process (a new bus on the same database) continues after
		// what was acknowledged: event 1 is not delivered again.
		time.Sleep(100 * time.Millisecond)
		bus2 := events.New(db, logging.Discard(), nil)
		bus2.Poll = 50 * time.Millisecond
		c2 := newCollector()
		bus2.Subscribe("flaky", nil, c2.handle)
		publish(t, db, bus2, "x", 2)
		run(t, bus2)
		if got := c2.wait(t, 1); len(got) != 1 || got[0] != 2 {
			t.Fatalf("after restart saw %v, want [2]", got)
		}
	}, events.Migrations)
}

func TestBus_PanickingHandlerDoesNotStopOthers(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), events.Migrations); err != nil {
		t.Fatal(err)
	}
	bus := events.New(db, logging.Discard(), nil)
	bus.Poll = 50 * time.Millisecond
	bus.Subscribe("bad", nil, func(context.Context, events.Event) error { panic("bug") })
	c := newCollector()
	bus.Subscribe("good", nil, c.handle)
	run(t, bus)
	publish(t, db, bus, "x", 7)
	if got := c.wait(t, 1); got[0] != 7 {
		t.Fatalf("saw %v", got)
	}
}

func TestPublish_RejectsBadInput(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), events.Migrations); err != nil {
		t.Fatal(err)
	}
	bus := events.New(db, logging.Discard(), nil)
	big := make([]byte, 300<<10)
	for _, tt := range []struct {
		typ     string
		payload any
	}{{"", 1}, {"has space", 1}, {"ok", big}, {"ok", func() {}}} {
		err := db.Tx(t.Context(), func(tx *store.Tx) error { return bus.Publish(t.Context(), tx, tt.typ, tt.payload) })
		if err == nil {
			t.Errorf("Publish(%q, %T) accepted", tt.typ, tt.payload)
		}
	}
}

// TestBus_TwoReplicasDeliverEachEventOnce: with two buses on one database
// (two replicas), a subscriber runs on one of them at a time.
func TestBus_TwoReplicasDeliverEachEventOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newCollector()
		for range 2 {
			bus := events.New(db, logging.Discard(), nil)
			bus.Poll = 20 * time.Millisecond
			bus.Subscribe("once", nil, c.handle)
			run(t, bus)
		}
		pub := events.New(db, logging.Discard(), nil)
		for i := 1; i <= 20; i++ {
			publish(t, db, pub, "x", i)
		}
		got := c.wait(t, 20)
		time.Sleep(200 * time.Millisecond) // room for a duplicate to show up
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.seen) != 20 {
			t.Fatalf("delivered %d times for 20 events: %v", len(c.seen), c.seen)
		}
		for i, n := range got {
			if n != i+1 {
				t.Fatalf("out of order: %v", got)
			}
		}
	}, events.Migrations)
}
