package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fakeclock"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// env is an identity service on a fresh database with a fake clock.
type env struct {
	ids   *identity.Service
	db    *store.DB
	audit *audit.Log
	clock *fakeclock.Clock
}

const (
	sessionIdle     = 2 * time.Hour
	sessionAbsolute = 24 * time.Hour
	testPassword    = "correct horse battery"
)

// each runs fn on SQLite and PostgreSQL, each with a fresh service, in
// parallel with other such tests.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fn(t, newEnv(t, db))
	}, audit.Migrations, identity.Migrations)
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	c := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	sealer, err := keyring.FromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, c.Now)
	ids, err := identity.New(identity.Deps{DB: db, Audit: l, Sealer: sealer, Logger: logging.Discard(), Clock: c.Now,
		SessionIdle: sessionIdle, SessionAbsolute: sessionAbsolute})
	if err != nil {
		t.Fatal(err)
	}
	return &env{ids: ids, db: db, audit: l, clock: c}
}

// as returns a context acting as u, the way authn sets it up for requests.
func as(ctx context.Context, u identity.User) context.Context {
	return reqinfo.WithActor(reqinfo.With(ctx, reqinfo.Info{RequestID: "req-test", RemoteIP: "192.0.2.1"}), u.ID, u.Username)
}

func (e *env) user(t *testing.T, name string) identity.User {
	t.Helper()
	u, err := e.ids.CreateUser(t.Context(), identity.NewUser{Username: name, Email: name + "@example.test", Password: testPassword})
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

// lastAudit returns the newest audit entry.
func (e *env) lastAudit(t *testing.T) audit.Entry {
	t.Helper()
	es, err := e.audit.List(t.Context(), audit.Filter{Limit: 1})
	if err != nil || len(es) != 1 {
		t.Fatalf("last audit entry: %v, %v", es, err)
	}
	return es[0]
}

func (e *env) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// wantKind fails unless err is of kind k.
func wantKind(t *testing.T, err error, k apperr.Kind) {
	t.Helper()
	if got := apperr.KindOf(err); err == nil || got != k {
		t.Fatalf("err = %v (kind %v), want kind %v", err, got, k)
	}
}
