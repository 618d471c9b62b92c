package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
)

func TestOIDC_ClientsAndKeys(t *testing.T) {
	a := apptest.Start(t)
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := rampart(t, dir, &out, &errb, args...)
		return code, out.String(), errb.String()
	}
	if code, _, errs := run("login", "--server", a.URL, "--token", a.AdminToken(t)); code != cli.ExitOK {
		t.Fatalf("login: %s", errs)
	}

	code, out, errs := run("oidc", "client", "create", "wiki", "--redirect-uri", "https://wiki.example/cb", "--scope", "user:read", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("create exit %d: %s", code, errs)
	}
	var created oidcop.CreatedClient
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	if created.ClientSecret == "" || created.Name != "wiki" || created.Public || len(created.Scopes) != 1 {
		t.Fatalf("created = %+v", created)
	}

	code, out, _ = run("oidc", "client", "list", "--output", "json")
	if code != cli.ExitOK || strings.Contains(out, created.ClientSecret) || strings.Contains(out, "client_secret") {
		t.Fatalf("list exit %d shows a secret or failed: %s", code, out)
	}
	var list []oidcop.ClientJSON
	_ = json.Unmarshal([]byte(out), &list)
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ClientID)
	}
	if strings.Join(ids, " ") != oidcop.CLIClientID+" "+created.ClientID {
		t.Fatalf("listed clients %v", ids)
	}

	for _, tc := range []struct {
		args []string
		exit int
		msg  string
	}{
		{[]string{"oidc", "client", "create", "bad", "--redirect-uri", "http://evil.example/cb"}, cli.ExitUsage, "must use https"},
		{[]string{"oidc", "client", "create", "bad", "--public", "--grant", "client_credentials"}, cli.ExitUsage, "public client"},
		{[]string{"oidc", "client", "delete", oidcop.CLIClientID}, cli.ExitUsage, "cannot be deleted"},
		{[]string{"oidc", "client", "delete", created.ClientID}, cli.ExitOK, ""},
		{[]string{"oidc", "client", "delete", created.ClientID}, cli.ExitNotFound, "not found"},
	} {
		code, _, errs := run(tc.args...)
		if code != tc.exit || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d (%s), want %d with %q", tc.args, code, errs, tc.exit, tc.msg)
		}
	}

	code, out, errs = run("oidc", "keys", "rotate", "--output", "json")
	var k oidcop.SigningKeyJSON
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &k) != nil || k.KeyID == "" || !k.Current {
		t.Fatalf("rotate exit %d: %s %s", code, out, errs)
	}
	code, out, _ = run("oidc", "keys", "list")
	if code != cli.ExitOK || !strings.Contains(out, k.KeyID) {
		t.Fatalf("keys list: %s", out)
	}

	// A user who is not a site administrator may not manage clients.
	admin := a.Client(t, a.AdminToken(t))
	tok := a.CreateUser(t, admin, "mallory")
	other := t.TempDir()
	if code := rampart(t, other, io.Discard, io.Discard, "login", "--server", a.URL, "--token", tok); code != cli.ExitOK {
		t.Fatal("login as mallory")
	}
	if code := rampart(t, other, io.Discard, io.Discard, "oidc", "client", "list"); code != cli.ExitForbidden {
		t.Errorf("non-admin list exit %d, want %d", code, cli.ExitForbidden)
	}
}
