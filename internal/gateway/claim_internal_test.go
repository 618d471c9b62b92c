package gateway

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// A project claiming a host while the config file takes a wildcard over
// it: whichever checks second sees the other. Here the project's claim
// arrives between the file's check and its swap, and is refused once the
// file's routes are in, instead of both owning the host.
func TestService_FileReloadAndProjectClaimAreSerialised(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(t.Context(), audit.Migrations, Migrations); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log := logging.Discard()
	g, err := New(Options{Listener: ln, Logger: log, Registry: prometheus.NewRegistry(), WAF: waf.NewEngine(waf.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gw.yaml")
	write := func(content string) {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("routes:\n  - name: other\n    host: other.test\n    backends: [{url: \"http://127.0.0.1:9\"}]\n")
	s, err := NewService(ServiceDeps{DB: db, Audit: audit.New(db, nil), Gateway: g, Logger: log, ConfigFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	write("routes:\n  - name: shop\n    host: \"*.race.test\"\n    backends: [{url: \"http://127.0.0.1:9\"}]\n")
	claimed := make(chan error, 1)
	s.afterFileCheck = func() {
		go func() {
			_, _, err := s.Put(context.Background(), Scope{OrgID: 1, ProjectID: 1, OrgName: "acme", ProjectName: "web"}, "app",
				Spec{Host: "a.race.test", Path: "/", Backends: []Backend{{URL: "http://127.0.0.1:9"}}})
			claimed <- err
		}()
		select { // the claim, if nothing holds it back, is done by now
		case err := <-claimed:
			claimed <- err
		case <-time.After(300 * time.Millisecond):
		}
	}
	if changed, err := s.readFile(t.Context()); err != nil || !changed {
		t.Fatalf("reload of the config file: changed %v, %v", changed, err)
	}
	if err := <-claimed; !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("a project's claim of a.race.test during the reload that brought *.race.test: %v, want a conflict", err)
	}
	stored, err := s.List(t.Context(), Scope{}, true)
	if err != nil || len(stored) != 0 {
		t.Fatalf("stored routes %+v %v, want none", stored, err)
	}
}
