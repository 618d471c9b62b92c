package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestDeploy_ReleasePromoteApprove drives delivery with the CLI against
// the whole app: environments, a release pushed to a registry, a
// deployment to staging on the node runtime behind the gateway,
// promotion of the same digest to production with an approval by
// someone else, the history and the difference between releases.
func TestDeploy_ReleasePromoteApprove(t *testing.T) {
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (runc needs it to create containers)")
	}
	// The image comes from a throwaway registry, unsigned: the pre-deploy
	// policies only audit here (internal/deploy tests the gate itself).
	a := apptest.Start(t, apptest.WithPreDeployAudited(t))
	rt := a.NodeRuntime
	if rt == nil {
		t.Fatal("the app runs no node runtime although runc and root are here")
	}
	t.Cleanup(func() { a.Stop(t); _ = rt.StopAll(context.Background()) })
	reg := deploytest.StartRegistry(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "maria")

	cliAs := func(dir string) func(args ...string) (int, string, string) {
		return func(args ...string) (int, string, string) {
			t.Helper()
			var out, errb bytes.Buffer
			code := cli.Main(t.Context(), cli.Env{Args: args, Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
				Getenv: func(k string) string {
					if k == "RAMPART_CONFIG_DIR" {
						return dir
					}
					return ""
				}})
			return code, out.String(), errb.String()
		}
	}
	run, asMaria := cliAs(t.TempDir()), cliAs(t.TempDir())
	must := func(r func(...string) (int, string, string), args ...string) string {
		t.Helper()
		code, out, errs := r(args...)
		if code != cli.ExitOK {
			t.Fatalf("rampart %s: exit %d: %s%s", strings.Join(args, " "), code, errs, out)
		}
		return out
	}
	must(run, "login", "--server", a.URL, "--token", a.AdminToken(t))
	must(asMaria, "login", "--server", a.URL, "--token", a.Login(t, "maria", apptest.UserPassword))
	must(run, "org", "create", "acme")
	must(run, "project", "create", "acme/web")
	must(run, "org", "member", "add", "acme", "maria", "--role", "maintainer")
	must(run, "env", "set", "staging", "--project", "acme/web", "--position", "1", "--replicas", "2", "--strategy", "rolling",
		"--host", "staging.acme.test", "--memory", "67108864")
	must(run, "env", "set", "production", "--project", "acme/web", "--position", "2", "--replicas", "2", "--strategy", "blue_green",
		"--host", "www.acme.test", "--approvals", "1", "--branch", "main", "--memory", "67108864")

	var rels []deploy.Release
	for _, v := range []string{"v1", "v2"} {
		image, digest := reg.Push(t, "acme/web", deploytest.Image(t, v))
		out := must(run, "release", "create", "--project", "acme/web", "--image", image, "--digest", digest, "--branch", "main",
			"--commit", strings.Repeat("c0ffee", 4), "--pr", "7", "--work-item", "WEB-1", "--env", "MODE="+v, "--reason", "ship "+v, "-o", "json")
		var r deploy.Release
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	var d deploy.Deployment
	out := must(run, "deploy", "1", "--to", "staging", "--project", "acme/web", "--wait", "-o", "json")
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.State != deploy.StateSucceeded {
		t.Fatalf("deploy to staging: %s", out)
	}
	if got := viaGateway(t, a.GatewayURL(), "staging.acme.test"); got != "v1" {
		t.Errorf("staging answers %q, want v1", got)
	}

	// Promotion: the release running in staging, by digest.
	out = must(run, "deploy", "--from", "staging", "--to", "production", "--project", "acme/web", "-o", "json")
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.State != deploy.StateAwaitingApproval || d.ReleaseNumber != 1 {
		t.Fatalf("promotion: %s", out)
	}
	id := strconv.FormatInt(d.ID, 10)
	if code, _, errs := run("deploy", "approve", id, "--project", "acme/web"); code != cli.ExitForbidden || !strings.Contains(errs, "someone else") {
		t.Errorf("self-approval: exit %d %s, want forbidden", code, errs)
	}
	must(asMaria, "deploy", "approve", id, "--project", "acme/web", "--comment", "go")
	deadline := time.Now().Add(60 * time.Second)
	for d.State != deploy.StateSucceeded && d.State != deploy.StateRolledBack && d.State != deploy.StateFailed && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = must(run, "deploy", "show", id, "--project", "acme/web", "-o", "json")
		_ = json.Unmarshal([]byte(out), &d)
	}
	if d.State != deploy.StateSucceeded || len(d.Approvals) != 1 || d.Approvals[0].User != "maria" {
		t.Fatalf("production deployment: %s", out)
	}
	if got := viaGateway(t, a.GatewayURL(), "www.acme.test"); got != "v1" {
		t.Errorf("production answers %q, want v1", got)
	}

	var envs []deploy.EnvironmentJSON
	if err := json.Unmarshal([]byte(must(run, "env", "list", "--project", "acme/web", "-o", "json")), &envs); err != nil || len(envs) != 2 {
		t.Fatalf("env list: %v", err)
	}
	for _, e := range envs {
		if e.Current == nil || e.Current.Digest != rels[0].Digest || e.Current.PullRequest != 7 {
			t.Errorf("environment %s runs %+v, want release 1's digest from PR 7", e.Name, e.Current)
		}
	}
	table := must(run, "env", "list", "--project", "acme/web")
	if !strings.Contains(table, "production") || !strings.Contains(table, "#1") {
		t.Errorf("env list table:\n%s", table)
	}
	diff := must(run, "release", "diff", "1", "2", "--project", "acme/web")
	if !strings.Contains(diff, "env.MODE") || !strings.Contains(diff, "digest") {
		t.Errorf("release diff:\n%s", diff)
	}
	ins := must(run, "env", "instances", "staging", "--project", "acme/web", "--logs", "200")
	if strings.Count(ins, "running") != 2 || !strings.Contains(ins, "app: version v1") {
		t.Errorf("instances:\n%s", ins)
	}
	var history []deploy.Deployment
	if err := json.Unmarshal([]byte(must(run, "deploy", "list", "--project", "acme/web", "-o", "json")), &history); err != nil || len(history) != 2 {
		t.Errorf("deploy list: %v %d", err, len(history))
	}
	if code, _, errs := run("deploy", "--to", "staging", "--project", "acme/web"); code != cli.ExitUsage {
		t.Errorf("deploy without a release: exit %d %s", code, errs)
	}
}

func viaGateway(t *testing.T, gw, host string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", gw+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Fields(string(b) + " -")[0]
}
