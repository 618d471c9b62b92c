package vault_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
	"github.com/rampartsec/rampart/internal/vault/transitkms"
	"github.com/rampartsec/rampart/internal/vault/transitkms/transittest"
)

// TestTransit_VaultOnTransit runs the vault with its data keys wrapped by a
// real HashiCorp Vault's Transit engine: secrets round-trip, rotating the
// Transit key re-wraps every data key on the Vault server (rewrap), and
// with the Vault server gone reads fail rather than fall back.
func TestTransit_VaultOnTransit(t *testing.T) {
	srv := transittest.StartVault(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		key := "rampart-" + strings.ReplaceAll(t.Name(), "/", "-")
		kek, err := transitkms.New(ctx, transitkms.Config{Address: srv.Addr, Token: transittest.RootToken, Key: key, Create: true})
		if err != nil {
			t.Fatal(err)
		}
		e := newEnvKEK(t, db, true, kek)
		for i := range 20 {
			e.set(t, fmt.Sprintf("acme/web/prod/S%02d", i), fmt.Sprintf("transit-value-%02d-a", i))
			e.set(t, fmt.Sprintf("acme/web/prod/S%02d", i), fmt.Sprintf("transit-value-%02d-b", i))
		}
		e.grant(t, "all", []string{"web/prod/*"}, "user:olivia")
		var wrapped []byte
		if err := db.QueryRow(ctx, "SELECT wrapped_dek FROM vault_versions LIMIT 1").Scan(&wrapped); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(wrapped), "vault:v1:") {
			t.Fatalf("stored data key %q is not a Transit ciphertext", wrapped[:min(12, len(wrapped))])
		}
		v, err := e.v.RotateKEK(e.as(ctx, e.owner))
		if err != nil || v != 2 {
			t.Fatalf("RotateKEK = %d, %v", v, err)
		}
		st, err := e.v.KEKStatus(ctx)
		if err != nil || st.Kind != "transit" || st.Pending != 0 || st.ByVersion[2] != 41 { // 40 versions and the fingerprint key
			t.Fatalf("status = %+v, %v", st, err)
		}
		for i := range 20 {
			for ver, suffix := range map[int]string{1: "a", 2: "b"} {
				got, err := e.read(t, reader(e.owner), fmt.Sprintf("acme/web/prod/S%02d", i), ver)
				if want := fmt.Sprintf("transit-value-%02d-%s", i, suffix); err != nil || got != want {
					t.Fatalf("S%02d v%d = %q, %v", i, ver, got, err)
				}
			}
		}
		// Another Transit key (a wrong KEK) opens nothing: the vault does
		// not start on it.
		other, err := transitkms.New(ctx, transitkms.Config{Address: srv.Addr, Token: transittest.RootToken, Key: key + "-other", Create: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vault.New(ctx, vault.Deps{DB: db, Audit: audit.New(db, nil), IDs: e.ids, KEK: other, Logger: discard()}); err == nil {
			t.Fatal("the vault started on another Transit key")
		}
	}, audit.Migrations, identity.Migrations, vault.Migrations)
	// With the Vault server down, reads fail with a clear error.
	db := storetest.OpenSQLite(t)
	if err := db.Migrate(context.Background(), audit.Migrations, identity.Migrations, vault.Migrations); err != nil {
		t.Fatal(err)
	}
	kek, err := transitkms.New(context.Background(), transitkms.Config{Address: srv.Addr, Token: transittest.RootToken, Key: "down", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvKEK(t, db, true, kek)
	e.set(t, "acme/K", "value-while-up")
	e.grant(t, "k", []string{"K"}, "user:olivia")
	srv.Stop()
	got, err := e.read(t, reader(e.owner), "acme/K", 0)
	if err == nil || !apperr.Is(err, apperr.Unavailable) || got != "" {
		t.Fatalf("read with Transit down = %q, %v", got, err)
	}
}
