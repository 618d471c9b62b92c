package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func appendN(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	ctx := reqinfo.With(t.Context(), reqinfo.Info{RequestID: "req-1", RemoteIP: "192.0.2.7", ActorID: 1, ActorName: "admin"})
	for i := range n {
		err := l.Append(ctx, audit.Record{
			Action:  "token.create",
			Target:  audit.Target{Type: "token", ID: fmt.Sprint(i), Name: fmt.Sprintf("t%d", i)},
			Details: map[string]any{"scopes": []string{"repo:read"}, "n": i},
		})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func TestLog_VerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name     string
		tamper   string // SQL run against the database
		wantSeq  int64
		wantKind string
	}{
		{"edited details", "UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = 3", 3, "edited"},
		{"edited actor", "UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 2", 2, "edited"},
		{"deleted middle", "DELETE FROM audit_log WHERE seq = 4", 4, "deleted"},
		{"deleted last", "DELETE FROM audit_log WHERE seq = 5", 5, "deleted"},
		{"deleted first", "DELETE FROM audit_log WHERE seq = 1", 1, "deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				l := audit.New(db, nil)
				appendN(t, l, 5)
				rep, err := l.Verify(t.Context())
				if err != nil || !rep.OK() || rep.Entries != 5 {
					t.Fatalf("before tampering: %+v, %v", rep, err)
				}
				if _, err := db.Exec(t.Context(), tt.tamper); err != nil {
					t.Fatal(err)
				}
				rep, err = l.Verify(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, p := range rep.Problems {
					if p.Seq == tt.wantSeq && p.Kind == tt.wantKind {
						found = true
					}
				}
				if !found {
					t.Fatalf("problems = %+v, want %s entry %d named", rep.Problems, tt.wantKind, tt.wantSeq)
				}
			}, audit.Migrations)
		})
	}
}

func TestLog_ConcurrentAppendsKeepOneChain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := audit.New(db, nil)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 5 {
					if err := l.Append(context.Background(), audit.Record{Action: "user.login", Target: audit.Target{Type: "user", ID: "1"}}); err != nil {
						t.Errorf("append: %v", err)
					}
				}
			})
		}
		wg.Wait()
		rep, err := l.Verify(t.Context())
		if err != nil || !rep.OK() || rep.Entries != 40 || rep.HeadSeq != 40 {
			t.Fatalf("report = %+v, %v; want 40 intact entries", rep, err)
		}
	}, audit.Migrations)
}

func TestLog_ListFiltersAndExport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := audit.New(db, nil)
		ctx := reqinfo.With(t.Context(), reqinfo.Info{RequestID: "r9", RemoteIP: "198.51.100.1"})
		recs := []audit.Record{
			{Action: "user.login", Outcome: audit.Failure, Target: audit.Target{Type: "user", Name: "alice"}, ActorName: "alice"},
			{Action: "user.login", Target: audit.Target{Type: "user", Name: "alice"}, ActorName: "alice"},
			{Action: "user.login_mfa", Target: audit.Target{Type: "user", Name: "bob"}, ActorName: "bob"},
			{Action: "org.create", OrgID: 7, Target: audit.Target{Type: "org", ID: "7", Name: "acme"}, ActorName: "alice"},
		}
		for _, r := range recs {
			if err := l.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := l.List(t.Context(), audit.Filter{Action: "user.login"})
		if err != nil {
			t.Fatal(err)
		}
		// "user.login" matches itself and its children, not "user.login_mfa".
		if len(got) != 2 || got[0].Seq != 2 || got[1].Outcome != audit.Failure {
			t.Fatalf("List(action=user.login) = %+v", got)
		}
		if got[0].SourceIP != "198.51.100.1" || got[0].RequestID != "r9" {
			t.Fatalf("request info not recorded: %+v", got[0])
		}
		byOrg, _ := l.List(t.Context(), audit.Filter{OrgID: 7})
		if len(byOrg) != 1 || byOrg[0].TargetName != "acme" {
			t.Fatalf("List(org=7) = %+v", byOrg)
		}
		var buf bytes.Buffer
		n, err := l.Export(t.Context(), &buf, audit.Filter{})
		if err != nil || n != 4 {
			t.Fatalf("Export = %d, %v", n, err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		var first audit.Entry
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Seq != 1 || first.Hash == "" {
			t.Fatalf("first exported line %q: %v", lines[0], err)
		}
	}, audit.Migrations)
}

// TestLog_HashFormatIsStable pins the chain's hash of a known entry: logs
// written by earlier versions must still verify, so the hashed encoding
// may never change.
func TestLog_HashFormatIsStable(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), audit.Migrations); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 4, 5, 6, 789012000, time.UTC)
	l := audit.New(db, func() time.Time { return at })
	ctx := reqinfo.With(t.Context(), reqinfo.Info{RequestID: "req-1", RemoteIP: "192.0.2.7", UserAgent: "ua/1", ActorID: 7, ActorName: "ann"})
	if err := l.Append(ctx, audit.Record{Action: "vault.secret.read", OrgID: 3,
		Target: audit.Target{Type: "secret", ID: "12", Name: "acme/web/prod/DB ü"}, Details: map[string]any{"version": 2}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := l.Export(t.Context(), &buf, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	var e audit.Entry
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	const want = "0fb2d8eda1a3ee656003a001290588eff9873b1abf71477dec640117f5ea3d91"
	if e.Hash != want {
		t.Fatalf("hash of the known entry = %s, want %s", e.Hash, want)
	}
}

// TestLog_AppendEachTx appends a batch in one transaction: one chain,
// in order, each entry with its own request's details.
func TestLog_AppendEachTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := audit.New(db, nil)
		appendN(t, l, 2)
		var recs []audit.Pending
		for i := range 3 {
			ctx := reqinfo.With(t.Context(), reqinfo.Info{RequestID: fmt.Sprintf("batch-%d", i), RemoteIP: "192.0.2.9", ActorName: fmt.Sprintf("u%d", i)})
			recs = append(recs, audit.Pending{Ctx: ctx, Record: audit.Record{Action: "vault.secret.read", Target: audit.Target{Type: "secret", ID: fmt.Sprint(i)}}})
		}
		if err := db.Tx(t.Context(), func(tx *store.Tx) error { return l.AppendEachTx(t.Context(), tx, recs...) }); err != nil {
			t.Fatal(err)
		}
		bad := append(recs[:1:1], audit.Pending{Ctx: t.Context(), Record: audit.Record{}})
		if err := db.Tx(t.Context(), func(tx *store.Tx) error { return l.AppendEachTx(t.Context(), tx, bad...) }); err == nil {
			t.Fatal("a batch with a record without action was appended")
		}
		rep, err := l.Verify(t.Context())
		if err != nil || !rep.OK() || rep.Entries != 5 {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
		var buf bytes.Buffer
		if _, err := l.Export(t.Context(), &buf, audit.Filter{AfterSeq: 2}); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		for i := range 3 {
			var e audit.Entry
			if err := dec.Decode(&e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(3+i) || e.RequestID != fmt.Sprintf("batch-%d", i) || e.ActorName != fmt.Sprintf("u%d", i) {
				t.Fatalf("entry %d = seq %d, request %s, actor %s", i, e.Seq, e.RequestID, e.ActorName)
			}
		}
	}, audit.Migrations)
}
