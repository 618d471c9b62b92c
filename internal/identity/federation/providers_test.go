package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/identity/federation"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

func newService(t *testing.T, db *store.DB) (*federation.Service, *identity.Service, *audit.Log) {
	t.Helper()
	keys, err := keyring.OpenLocal(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, nil)
	ids, err := identity.New(identity.Deps{DB: db, Audit: log, Sealer: keys, Logger: logging.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	fed, err := federation.New(federation.Deps{IDs: ids, Logger: logging.Discard(), PublicURL: "https://rampart.example/"})
	if err != nil {
		t.Fatal(err)
	}
	return fed, ids, log
}

const secret = "upstream-client-secret-value"

func TestService_Providers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fed, ids, log := newService(t, db)
		if got := fed.CallbackURL(); got != "https://rampart.example/login/idp/callback" {
			t.Errorf("callback URL = %q", got)
		}
		owner, err := ids.CreateUser(ctx, identity.NewUser{Username: "owner"})
		if err != nil {
			t.Fatal(err)
		}
		acme, err := ids.CreateOrg(ctx, owner.ID, "acme", "")
		if err != nil {
			t.Fatal(err)
		}
		other, err := ids.CreateOrg(ctx, owner.ID, "other", "")
		if err != nil {
			t.Fatal(err)
		}
		p, err := fed.Create(ctx, acme, federation.NewProvider{Name: "corp", Label: "Corp SSO", Issuer: "https://login.example.com",
			ClientID: "rampart", ClientSecret: secret, Role: "developer", CreateUsers: true})
		if err != nil {
			t.Fatal(err)
		}
		if !p.HasSecret || p.OrgID != acme.ID || p.Role.String() != "developer" {
			t.Errorf("created %+v", p)
		}
		if _, err := fed.Create(ctx, other, federation.NewProvider{Name: "corp", Issuer: "http://127.0.0.1:1", ClientID: "c"}); err != nil {
			t.Errorf("same name in another org: %v", err)
		}

		_, err = fed.Create(ctx, acme, federation.NewProvider{Name: "corp", Issuer: "https://x.example", ClientID: "c"})
		if apperr.KindOf(err) != apperr.Conflict {
			t.Errorf("duplicate name: %v, want conflict", err)
		}
		_, err = fed.Create(ctx, acme, federation.NewProvider{Name: "bad", Issuer: "http://x.example", ClientID: "c"})
		if apperr.FieldOf(err) != "issuer" {
			t.Errorf("plain http issuer: %v", err)
		}

		got, err := fed.Get(ctx, acme.ID, "corp")
		if err != nil || got.ID != p.ID || got.Label != "Corp SSO" || !got.HasSecret {
			t.Errorf("get = %+v, %v", got, err)
		}
		if _, err := fed.Get(ctx, other.ID, "nope"); apperr.KindOf(err) != apperr.NotFound {
			t.Errorf("get unknown: %v", err)
		}
		list, err := fed.List(ctx, acme.ID)
		if err != nil || len(list) != 1 {
			t.Errorf("list = %+v, %v", list, err)
		}
		all, err := fed.All(ctx)
		if err != nil || len(all) != 2 {
			t.Errorf("all = %d providers, %v", len(all), err)
		}

		// The secret is stored sealed, bound to the org and name.
		var sealed []byte
		if err := db.QueryRow(ctx, "SELECT client_secret FROM federation_providers WHERE id = ?", p.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if len(sealed) == 0 || bytes.Contains(sealed, []byte(secret)) {
			t.Fatalf("client secret stored in the clear or not at all: %q", sealed)
		}
		if _, err := ids.Sealer().Open(sealed, "federation.client_secret:"+itoa(other.ID)+"/corp"); err == nil {
			t.Error("the sealed secret opens under another org's context")
		}
		if pt, err := ids.Sealer().Open(sealed, "federation.client_secret:"+itoa(acme.ID)+"/corp"); err != nil || string(pt) != secret {
			t.Errorf("sealed secret opens to %q, %v", pt, err)
		}

		if err := fed.Delete(ctx, acme, "corp"); err != nil {
			t.Fatal(err)
		}
		if err := fed.Delete(ctx, acme, "corp"); apperr.KindOf(err) != apperr.NotFound {
			t.Errorf("second delete: %v", err)
		}
		if list, _ := fed.List(ctx, acme.ID); len(list) != 0 {
			t.Errorf("after delete: %+v", list)
		}

		es, err := log.List(ctx, audit.Filter{Action: "idp", Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range es {
			actions = append(actions, e.Action)
			b, _ := json.Marshal(e)
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("audit entry carries the client secret: %s", b)
			}
		}
		if want := []string{"idp.delete", "idp.create", "idp.create"}; !slices.Equal(actions, want) {
			t.Errorf("audited %v, want %v", actions, want)
		}
		if ok, err := verifyAudit(ctx, log); err != nil || !ok {
			t.Errorf("audit chain: %v %v", ok, err)
		}
	}, audit.Migrations, identity.Migrations, federation.Migrations)
}

func verifyAudit(ctx context.Context, log *audit.Log) (bool, error) {
	r, err := log.Verify(ctx)
	return err == nil && r.OK(), err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
