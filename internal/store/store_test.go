package store_test

import (
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
