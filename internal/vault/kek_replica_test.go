package vault_test

import (
	"context"
	"testing"

	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// TestKEKRotation_OtherReplicaFollows: two replicas sharing DATA/keys
// (docs/architecture.md: "shared key file")
// and the database. Replica A rotates the KEK and re-wraps every data key;
// replica B reads every value without a restart (it loads kek-2.key when
// a data key needs it).
func TestKEKRotation_OtherReplicaFollows(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.set(t, "acme/web/prod/DB_PASSWORD", "s3cret-value-1")
		e.grant(t, "me", []string{"web/prod/*"}, "user:olivia")
		ringB, err := keyring.OpenFileRing(e.keysDir)
		if err != nil {
			t.Fatal(err)
		}
		b := e.start(t, ringB, false)
		if _, _, _, err := b.Read(context.Background(), reader(e.owner), mustRef(t, "acme/web/prod/DB_PASSWORD"), 0); err != nil {
			t.Fatalf("B before rotation: %v", err)
		}
		if _, err := e.v.RotateKEK(e.as(context.Background(), e.owner)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := e.v.Read(context.Background(), reader(e.owner), mustRef(t, "acme/web/prod/DB_PASSWORD"), 0); err != nil {
			t.Fatalf("A after rotation: %v", err)
		}
		_, _, _, err = b.Read(context.Background(), reader(e.owner), mustRef(t, "acme/web/prod/DB_PASSWORD"), 0)
		if err != nil {
			t.Errorf("replica B cannot read after rotation on replica A: %v", err)
		}
	})
}
