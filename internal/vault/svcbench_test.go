package vault_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault"
)

// BenchmarkServiceRead is the read path without HTTP: policy, decrypt and
// the audited, group-committed read on SQLite, from 16 goroutines. It
// reports the CPU time per read, the figure that decides how many reads a
// 2-core machine serves with a short tail.
func BenchmarkServiceRead(b *testing.B) {
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
	var next atomic.Int64
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.SetParallelism(8)
	b.ResetTimer()
	c0 := cpu()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if _, _, _, err := e.v.Read(ctx, rd, refs[i%secrets], 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N), "cpu-µs/read")
}
