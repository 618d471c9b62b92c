package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/identity/federation"
)

func TestOrgIdP_AddListGetRemove(t *testing.T) {
	a := apptest.Start(t)
	dir := t.TempDir()
	const secret = "s3cret-from-the-upstream"
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Main(t.Context(), cli.Env{Args: args, Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin),
			Getenv: func(k string) string {
				if k == "RAMPART_CONFIG_DIR" {
					return dir
				}
				return ""
			}})
		if strings.Contains(out.String(), secret) || strings.Contains(errb.String(), secret) {
			t.Errorf("%v printed the client secret:\n%s%s", args, out.String(), errb.String())
		}
		return code, out.String(), errb.String()
	}
	if code, _, errs := run("", "login", "--server", a.URL, "--token", a.AdminToken(t)); code != cli.ExitOK {
		t.Fatalf("login: %s", errs)
	}
	if code, _, errs := run("", "org", "create", "acme"); code != cli.ExitOK {
		t.Fatalf("org create: %s", errs)
	}

	code, out, errs := run(secret+"\n", "org", "idp", "add", "acme", "corp", "--label", "Corp SSO", "--issuer", "https://login.example.com/realms/corp",
		"--client-id", "rampart", "--client-secret-stdin", "--create-users", "--role", "developer", "--scope", "openid,profile", "--scope", "groups", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("add exit %d: %s", code, errs)
	}
	var p federation.ProviderJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != "corp" || p.Label != "Corp SSO" || !p.HasSecret || !p.CreateUsers || p.MatchEmail || p.Role != "developer" ||
		strings.Join(p.Scopes, " ") != "openid profile groups" || p.CallbackURL != a.URL+federation.CallbackPath {
		t.Errorf("added %+v", p)
	}
	if strings.Contains(out, `"client_secret"`) {
		t.Errorf("add output has a client_secret field: %s", out)
	}

	code, out, _ = run("", "org", "idp", "list", "acme", "--output", "json")
	var list []federation.ProviderJSON
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Name != "corp" {
		t.Fatalf("list exit %d: %s", code, out)
	}
	code, out, _ = run("", "org", "idp", "get", "acme", "corp")
	if code != cli.ExitOK || !strings.Contains(out, "set (never shown)") || !strings.Contains(out, a.URL+federation.CallbackPath) {
		t.Errorf("get exit %d:\n%s", code, out)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		exit  int
		msg   string
	}{
		{"secret as an argument", "", []string{"org", "idp", "add", "acme", "x", "--issuer", "https://a.example", "--client-id", "c", "--client-secret", secret}, cli.ExitUsage, "unknown flag"},
		{"empty secret on stdin", "", []string{"org", "idp", "add", "acme", "x", "--issuer", "https://a.example", "--client-id", "c", "--client-secret-stdin"}, cli.ExitUsage, "standard input is empty"},
		{"plain http issuer", "", []string{"org", "idp", "add", "acme", "x", "--issuer", "http://login.example.com", "--client-id", "c"}, cli.ExitUsage, "must use https"},
		{"owner role", "", []string{"org", "idp", "add", "acme", "x", "--issuer", "https://a.example", "--client-id", "c", "--role", "owner"}, cli.ExitUsage, "never owner"},
		{"bad name", "", []string{"org", "idp", "add", "acme", "Corp SSO", "--issuer", "https://a.example", "--client-id", "c"}, cli.ExitUsage, "lowercase"},
		{"no issuer", "", []string{"org", "idp", "add", "acme", "x", "--client-id", "c"}, cli.ExitUsage, "issuer"},
		{"duplicate", "", []string{"org", "idp", "add", "acme", "corp", "--issuer", "https://a.example", "--client-id", "c"}, cli.ExitConflict, "already has"},
		{"remove", "", []string{"org", "idp", "remove", "acme", "corp"}, cli.ExitOK, "Removed identity provider corp"},
		{"remove again", "", []string{"org", "idp", "remove", "acme", "corp"}, cli.ExitNotFound, "not found"},
		{"unknown org", "", []string{"org", "idp", "list", "nope"}, cli.ExitNotFound, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(tc.stdin, tc.args...)
			if code != tc.exit || !strings.Contains(errs, tc.msg) {
				t.Errorf("exit %d (%s), want %d with %q", code, errs, tc.exit, tc.msg)
			}
		})
	}
	if code, out, _ := run("", "org", "idp", "list", "acme", "--output", "json"); code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("list after remove: %d %s", code, out)
	}

	// A developer of the org may list but not add.
	admin := a.Client(t, a.AdminToken(t))
	tok := a.CreateUser(t, admin, "dev")
	if code, _, errs := run("", "org", "member", "add", "acme", "dev", "--role", "developer"); code != cli.ExitOK {
		t.Fatalf("member add: %s", errs)
	}
	other := t.TempDir()
	if code := cli.Main(t.Context(), cli.Env{Args: []string{"login", "--server", a.URL, "--token", tok}, Stdout: io.Discard, Stderr: io.Discard,
		Stdin: strings.NewReader(""), Getenv: func(k string) string { return map[string]string{"RAMPART_CONFIG_DIR": other}[k] }}); code != cli.ExitOK {
		t.Fatal("login as dev")
	}
	devRun := func(args ...string) int {
		return cli.Main(t.Context(), cli.Env{Args: args, Stdout: io.Discard, Stderr: io.Discard, Stdin: strings.NewReader(secret),
			Getenv: func(k string) string { return map[string]string{"RAMPART_CONFIG_DIR": other}[k] }})
	}
	if code := devRun("org", "idp", "list", "acme"); code != cli.ExitOK {
		t.Errorf("developer list exit %d", code)
	}
	if code := devRun("org", "idp", "add", "acme", "mine", "--issuer", "https://a.example", "--client-id", "c", "--client-secret-stdin"); code != cli.ExitForbidden {
		t.Errorf("developer add exit %d, want %d", code, cli.ExitForbidden)
	}
}
