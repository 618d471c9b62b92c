package vault_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/vault"
)

// TestLeaks_LocationOnlyForThoseWhoMayRead: where a leak was found is shown
// to the org's policy managers and to users a policy lets read the secret,
// and hidden from other members. Otherwise a developer without access could
// push guesses past push protection, one per line, and read off the leak
// list which line matched a secret's value.
func TestLeaks_LocationOnlyForThoseWhoMayRead(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := e.as(context.Background(), e.owner)
		e.set(t, "acme/web/prod/DB_PASSWORD", "acme-db-1987")
		dev := e.user(t, "dave")
		e.member(t, dev, authz.Developer)
		granted := e.user(t, "gina")
		e.member(t, granted, authz.Developer)
		e.grant(t, "db", []string{"web/prod/*"}, "user:gina")
		var found []vault.Found
		for y := 1980; y < 2000; y++ {
			v := vault.NewValue(fmt.Appendf(nil, "acme-db-%d", y))
			found = append(found, vault.Found{Value: &v, Source: "push-protection", Location: fmt.Sprintf("acme/scratch@0123abcd:guesses.txt:%d", y-1979)})
		}
		if _, err := e.v.ReportLeaks(e.as(ctx, dev), found); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			rd     vault.Reader
			manage bool
			shown  bool
		}{
			{"developer without access", reader(dev), false, false},
			{"developer a policy grants the secret", reader(granted), false, true},
			{"policy manager", reader(e.owner), true, true},
		} {
			ls, err := e.v.LeaksFor(ctx, "acme", false, tc.rd, tc.manage)
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 1 || ls[0].Ref.String() != "acme/web/prod/DB_PASSWORD" {
				t.Fatalf("%s: leaks %+v", tc.name, ls)
			}
			if shown := ls[0].Location == "acme/scratch@0123abcd:guesses.txt:8"; shown != tc.shown {
				t.Errorf("%s: location %q", tc.name, ls[0].Location)
			}
		}
	})
}
