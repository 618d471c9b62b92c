package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/identity/realm"
)

func TestRealm_SetShowUsersRm(t *testing.T) {
	a := apptest.Start(t)
	dir := t.TempDir()
	const secret = "smtp-pass-from-stdin"
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
			t.Errorf("%v printed the SMTP password:\n%s%s", args, out.String(), errb.String())
		}
		return code, out.String(), errb.String()
	}
	if code, _, errs := run("", "login", "--server", a.URL, "--token", a.AdminToken(t)); code != cli.ExitOK {
		t.Fatalf("login: %s", errs)
	}
	if code, _, errs := run("", "org", "create", "acme"); code != cli.ExitOK {
		t.Fatalf("org create: %s", errs)
	}
	if code, _, errs := run("", "realm", "set", "acme"); code == cli.ExitOK || !strings.Contains(errs, "smtp host and from address are required") {
		t.Errorf("set without a mail server: exit %d %s", code, errs)
	}
	code, out, errs := run(secret+"\n", "realm", "set", "acme", "--display-name", "Acme Shop", "--smtp-host", "smtp.acme.test",
		"--smtp-from", "Acme <noreply@acme.test>", "--smtp-user", "mailer", "--smtp-password-stdin", "--session-idle", "15m", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("set: exit %d %s", code, errs)
	}
	var r realm.RealmJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Configured || r.DisplayName != "Acme Shop" || r.SMTP.Port != 587 || r.SMTP.TLS != "starttls" || !r.SMTP.HasPassword ||
		r.SessionIdle != "15m0s" || !r.AllowSignup || r.JWKSURL != a.URL+"/api/v1/realms/acme/jwks" {
		t.Errorf("set = %+v", r)
	}
	code, out, _ = run("", "realm", "show", "acme")
	if code != cli.ExitOK || !strings.Contains(out, "set (never shown)") || !strings.Contains(out, "smtp.acme.test:587 (starttls)") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	code, out, errs = run("", "realm", "set", "acme", "--signup=false", "--clear-smtp-password", "--output", "json")
	r = realm.RealmJSON{}
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &r) != nil || r.AllowSignup || r.SMTP.HasPassword || r.DisplayName != "Acme Shop" {
		t.Errorf("set --signup=false --clear-smtp-password: exit %d %+v %s", code, r, errs)
	}
	code, out, errs = run("idp-secret\n", "realm", "provider", "set", "acme", "corp", "--issuer", "https://login.example.com",
		"--client-id", "shop", "--client-secret-stdin", "--output", "json")
	var p realm.ProviderJSON
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &p) != nil || !p.HasSecret || !p.RequireMFA || p.Issuer != "https://login.example.com" {
		t.Errorf("provider set: exit %d %+v %s", code, p, errs)
	}
	if strings.Contains(out, "idp-secret") {
		t.Errorf("provider set printed the client secret: %s", out)
	}
	if code, out, _ = run("", "realm", "provider", "list", "acme"); code != cli.ExitOK || !strings.Contains(out, "corp") {
		t.Errorf("provider list: exit %d %s", code, out)
	}
	if code, _, errs = run("", "realm", "provider", "rm", "acme", "corp"); code != cli.ExitOK {
		t.Errorf("provider rm: exit %d %s", code, errs)
	}
	kid := r.KeyID
	code, out, errs = run("", "realm", "rotate-key", "acme", "--output", "json")
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &r) != nil || r.KeyID == kid {
		t.Errorf("rotate-key: exit %d, key %q → %q %s", code, kid, r.KeyID, errs)
	}
	if code, _, errs = run("", "realm", "user", "rm", "acme", "42"); code != cli.ExitNotFound || !strings.Contains(errs, "no such user") {
		t.Errorf("user rm of nobody: exit %d %s", code, errs)
	}
	code, out, _ = run("", "realm", "users", "acme", "--output", "json")
	if code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("users: exit %d %s", code, out)
	}
	if code, _, errs := run("", "realm", "rm", "acme"); code != cli.ExitOK || !strings.Contains(errs, "Removed") {
		t.Errorf("rm: exit %d %s", code, errs)
	}
	code, out, _ = run("", "realm", "show", "acme")
	if code != cli.ExitOK || !strings.Contains(out, "none") {
		t.Errorf("show after rm: exit %d %s", code, out)
	}
}
