package store_test

import (
	"os"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestContract(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { storetest.Run(t, b) })
	}
}

func TestOpen_RejectsUnknownScheme(t *testing.T) {
	_, err := store.Open(t.Context(), "mysql://root:hunter2@db/x")
	if !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("err = %v, want Invalid", err)
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") {
		t.Fatalf("error leaks the password: %q", msg)
	}
}

func TestOpen_SQLitePathWithURICharacters(t *testing.T) {
	dir := t.TempDir() + "/odd #dir?%41"
	db, err := store.Open(t.Context(), "sqlite:"+dir+"/rampart.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(t.Context(), "CREATE TABLE x (a INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/rampart.db"); err != nil {
		t.Fatalf("database not where asked: %v", err)
	}
}
