package vault_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

func BenchmarkZZSeqRead(b *testing.B) {
	db := storetest.OpenSQLite(b)
	if err := db.Migrate(b.Context(), audit.Migrations, identity.Migrations, vault.Migrations); err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, db, true)
	const secrets = 100
	refs := make([]vault.Ref, secrets)
	for i := range secrets {
		name := fmt.Sprintf("acme/web/prod/S%03d", i)
		e.set(b, name, fmt.Sprintf("bench-secret-value-%03d", i))
		refs[i] = mustRef(b, name)
	}
	e.grant(b, "bench", []string{"web/prod/*"}, "user:olivia")
	rd := reader(e.owner)
	ctx := e.as(context.Background(), e.owner)
	b.ResetTimer()
	for i := range b.N {
		if _, _, _, err := e.v.Read(ctx, rd, refs[i%secrets], 0); err != nil {
			b.Fatal(err)
		}
	}
}
