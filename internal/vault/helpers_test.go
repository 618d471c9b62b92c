package vault_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/fakeclock"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// env is a vault on a real database with identity, audit and a key-file
// keyring in a temporary directory.
type env struct {
	db      *store.DB
	ids     *identity.Service
	audit   *audit.Log
	clock   *fakeclock.Clock
	ring    *keyring.Ring
	keysDir string
	v       *vault.Service
	owner   identity.User
	org     identity.Org
	project identity.Project
}

// each runs fn on SQLite and PostgreSQL with a fresh vault each, whose
// committer runs until the test ends.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fn(t, newEnv(t, db, true))
	}, audit.Migrations, identity.Migrations, vault.Migrations)
}

func newEnv(t testing.TB, db *store.DB, run bool) *env { return newEnvKEK(t, db, run, nil) }

// newEnvKEK is newEnv with the vault on kek (nil: the key-file keyring).
func newEnvKEK(t testing.TB, db *store.DB, run bool, kek keyring.KEK) *env {
	t.Helper()
	e := &env{db: db, clock: fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), keysDir: filepath.Join(t.TempDir(), "keys")}
	var err error
	if e.ring, err = keyring.OpenFileRing(e.keysDir); err != nil {
		t.Fatal(err)
	}
	e.audit = audit.New(db, e.clock.Now)
	e.ids, err = identity.New(identity.Deps{DB: db, Audit: e.audit, Sealer: e.ring.Primary(), Logger: logging.Discard(), Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if kek == nil {
		kek = e.ring
	}
	e.v = e.start(t, kek, run)
	ctx := context.Background()
	e.owner = e.user(t, "olivia")
	if e.org, err = e.ids.CreateOrg(e.as(ctx, e.owner), e.owner.ID, "acme", ""); err != nil {
		t.Fatal(err)
	}
	if e.project, err = e.ids.CreateProject(e.as(ctx, e.owner), e.org.ID, "web", ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// start builds a vault service on kek and, with run, runs it until the
// test ends.
func (e *env) start(t testing.TB, kek keyring.KEK, run bool, opts ...func(*vault.Deps)) *vault.Service {
	t.Helper()
	d := vault.Deps{DB: e.db, Audit: e.audit, IDs: e.ids, KEK: kek, Logger: logging.Discard(), Clock: e.clock.Now}
	for _, o := range opts {
		o(&d)
	}
	v, err := vault.New(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = v.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return v
}

func (e *env) user(t testing.TB, name string) identity.User {
	t.Helper()
	u, err := e.ids.CreateUser(context.Background(), identity.NewUser{Username: name, Email: name + "@example.test", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// member makes u a member of acme with role.
func (e *env) member(t testing.TB, u identity.User, role authz.Role) {
	t.Helper()
	if err := e.ids.SetMember(e.as(context.Background(), e.owner), e.org.ID, u.ID, role); err != nil {
		t.Fatal(err)
	}
}

// as returns a context acting as u, the way authn sets it up.
func (e *env) as(ctx context.Context, u identity.User) context.Context {
	return reqinfo.WithActor(reqinfo.With(ctx, reqinfo.Info{RequestID: "req-test", RemoteIP: "192.0.2.1"}), u.ID, u.Username)
}

func reader(u identity.User) vault.Reader { return vault.Reader{UserID: u.ID, Username: u.Username} }

func mustRef(t testing.TB, s string) vault.Ref {
	t.Helper()
	r, err := vault.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) set(t testing.TB, ref, value string) (vault.Secret, vault.Version) {
	t.Helper()
	sec, v, err := e.v.Set(e.as(context.Background(), e.owner), mustRef(t, ref), vault.Write{Value: vault.NewValue([]byte(value))})
	if err != nil {
		t.Fatalf("set %s: %v", ref, err)
	}
	return sec, v
}

func (e *env) grant(t testing.TB, name string, secrets []string, subjects ...string) {
	t.Helper()
	if _, err := e.v.PutPolicy(e.as(context.Background(), e.owner), "acme", vault.NewPolicy{Name: name, Secrets: secrets, Subjects: subjects}); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
}

func (e *env) read(t testing.TB, rd vault.Reader, ref string, version int) (string, error) {
	t.Helper()
	val, _, _, err := e.v.Read(context.Background(), rd, mustRef(t, ref), version)
	return string(val.Reveal()), err
}

// auditText is the whole audit log as JSON lines.
func (e *env) auditText(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	if _, err := e.audit.Export(context.Background(), &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// auditEntries returns entries of an action, oldest first.
func (e *env) auditEntries(t testing.TB, action string) []audit.Entry {
	t.Helper()
	var b strings.Builder
	if _, err := e.audit.Export(context.Background(), &b, audit.Filter{Action: action}); err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for l := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var en audit.Entry
		if err := json.Unmarshal([]byte(l), &en); err != nil {
			t.Fatal(err)
		}
		out = append(out, en)
	}
	return out
}

func newRingIn(dir string) (*keyring.Ring, error) { return keyring.OpenFileRing(dir) }

func discard() *slog.Logger { return logging.Discard() }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
