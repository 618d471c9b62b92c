package boards_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// env is a boards service on a fresh database, with the real identity
// service, audit log and event bus (dispatching).
type env struct {
	db    *store.DB
	ids   *identity.Service
	audit *audit.Log
	bus   *events.Bus
	svc   *boards.Service
	clock *fakeclock.Clock
	repos *repoTable
}

// repoTable stands in for scm's directory of repositories: which branch
// of each repository is its default.
type repoTable struct {
	mu   sync.Mutex
	defs map[int64]string
}

func (r *repoTable) RepoPath(_ context.Context, id int64) (string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	def, ok := r.defs[id]
	if !ok {
		return "", "", apperr.E(apperr.NotFound, "no repository %d", id)
	}
	return "/nonexistent", def, nil
}

func (r *repoTable) set(id int64, def string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.defs[id] = def
}

// each runs fn on SQLite and PostgreSQL, in parallel with other such tests.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fn(t, newEnv(t, db))
	}, events.Migrations, audit.Migrations, identity.Migrations, boards.Migrations)
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	c := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	key := make([]byte, 32)
	sealer, err := keyring.FromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, c.Now)
	ids, err := identity.New(identity.Deps{DB: db, Audit: l, Sealer: sealer, Logger: logging.Discard(), Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New(db, logging.Discard(), nil)
	bus.Poll = 20 * time.Millisecond
	repos := &repoTable{defs: map[int64]string{}}
	svc, err := boards.New(boards.Deps{DB: db, IDs: ids, Audit: l, Events: bus, Logger: logging.Discard(), Clock: c.Now,
		PublicURL: "https://rampart.example", Repos: repos})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = bus.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{db: db, ids: ids, audit: l, bus: bus, svc: svc, clock: c, repos: repos}
}

// as returns a context acting as u, the way authn sets it up for requests.
func as(ctx context.Context, u identity.User) context.Context {
	return reqinfo.WithActor(reqinfo.With(ctx, reqinfo.Info{RequestID: "req-test", RemoteIP: "192.0.2.1"}), u.ID, u.Username)
}

func (e *env) user(t *testing.T, name string) identity.User {
	t.Helper()
	u, err := e.ids.CreateUser(t.Context(), identity.NewUser{Username: name, Email: name + "@example.test"})
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func (e *env) org(t *testing.T, owner identity.User, name string) identity.Org {
	t.Helper()
	o, err := e.ids.CreateOrg(as(t.Context(), owner), owner.ID, name, "")
	if err != nil {
		t.Fatalf("create org %s: %v", name, err)
	}
	return o
}

func (e *env) item(t *testing.T, ctx context.Context, o identity.Org, in boards.NewItem) boards.WorkItem {
	t.Helper()
	w, err := e.svc.Create(ctx, o, in)
	if err != nil {
		t.Fatalf("create %+v: %v", in, err)
	}
	return w
}

func (e *env) get(t *testing.T, o identity.Org, n int64) boards.WorkItem {
	t.Helper()
	w, err := e.svc.Get(t.Context(), o, n)
	if err != nil {
		t.Fatalf("get AB#%d: %v", n, err)
	}
	return w
}

// publish publishes an event and waits until the boards subscriber has
// handled it.
func (e *env) publish(t *testing.T, typ string, payload any) {
	t.Helper()
	if err := e.bus.PublishNow(t.Context(), typ, payload); err != nil {
		t.Fatalf("publish %s: %v", typ, err)
	}
	var last int64
	if err := e.db.QueryRow(t.Context(), "SELECT MAX(seq) FROM events").Scan(&last); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var cur int64
		err := e.db.QueryRow(t.Context(), "SELECT seq FROM event_cursors WHERE subscriber = 'boards'").Scan(&cur)
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			t.Fatal(err)
		}
		if cur >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("boards did not handle event %d (cursor at %d)", last, cur)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// auditActions returns the actions audited on targets of type typ, oldest
// first.
func (e *env) auditActions(t *testing.T, typ string) []string {
	t.Helper()
	es, err := e.audit.List(t.Context(), audit.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].TargetType == typ {
			out = append(out, es[i].Action+" "+es[i].TargetID+" by "+es[i].ActorName)
		}
	}
	return out
}

func wantKind(t *testing.T, err error, k apperr.Kind) {
	t.Helper()
	if got := apperr.KindOf(err); err == nil || got != k {
		t.Fatalf("err = %v (kind %v), want kind %v", err, got, k)
	}
}
