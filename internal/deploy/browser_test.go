package deploy_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestBrowser_ApproveFromTheBoard: a maintainer opens the environments
// board in Chromium, sees what runs in staging (release, commit, PR,
// work items) and a production deployment waiting for approval,
// approves it, and the board then says production runs that release.
func TestBrowser_ApproveFromTheBoard(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	needRuntime(t)
	a := apptest.Start(t, withPreDeployAudited(t))
	rt := a.NodeRuntime
	t.Cleanup(func() { a.Stop(t); _ = rt.StopAll(t.Context()) })
	reg := deploytest.StartRegistry(t)
	admin := a.Client(t, a.AdminToken(t))
	a.CreateUser(t, admin, "maria")
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", map[string]string{"name": "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/projects", map[string]string{"name": "web"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/maria", map[string]string{"role": "maintainer"})
	p := httpapi.Prefix + "/orgs/acme/projects/web"
	target := deploy.TargetSpec{Replicas: 1, MemoryBytes: 64 << 20, HealthTimeout: deploy.Duration(20 * time.Second)}
	admin.Must(http.StatusOK, "PUT", p+"/environments/staging", deploy.EnvironmentSpec{Position: 1, Target: target})
	admin.Must(http.StatusOK, "PUT", p+"/environments/production", deploy.EnvironmentSpec{Position: 2, Target: target,
		Protection: deploy.Protection{RequiredApprovals: 1, AllowedBranches: []string{"main"}}})
	image, digest := reg.Push(t, "acme/web", deploytest.Image(t, "v1"))
	admin.Must(http.StatusCreated, "POST", p+"/releases", map[string]any{"image": image, "digest": digest, "source_commit": "0123456789abcdef",
		"source_branch": "main", "pull_request": 42, "work_items": []string{"WEB-9"}, "reason": "first launch"})
	var d deploy.Deployment
	admin.Must(http.StatusCreated, "POST", p+"/deployments", deploy.DeployRequest{Environment: "staging", Release: 1}).Decode(t, &d)
	waitState := func(id int64, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			admin.Must(http.StatusOK, "GET", p+"/deployments/"+itoa(id), nil).Decode(t, &d)
			if d.State == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("deployment %d is %s (%s), want %s", id, d.State, d.Message, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitState(d.ID, deploy.StateSucceeded)
	admin.Must(http.StatusCreated, "POST", p+"/deployments", deploy.DeployRequest{Environment: "production", FromEnvironment: "staging"}).Decode(t, &d)

	c := browsertest.Start(t, chromium)
	c.Do("sign in as the maintainer",
		chromedp.Navigate(a.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), "maria"),
		chromedp.SetValue(chromedp.CSS("#password"), apptest.UserPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#account-link")),
	)
	c.Do("open the board from the navigation",
		chromedp.Navigate(a.URL+"/deploy"),
		chromedp.Click(chromedp.Search(`//a[normalize-space()="acme/web"]`)),
		chromedp.WaitVisible(chromedp.CSS("#env-production")),
	)
	staging := c.Text("#env-staging")
	for _, want := range []string{"release #1 runs", "0123456789abcdef", "#42", "WEB-9"} {
		if !strings.Contains(staging, want) {
			t.Errorf("staging card lacks %q:\n%s", want, staging)
		}
	}
	if got := c.Text("#env-production .running"); !strings.HasPrefix(got, "nothing runs here yet") {
		t.Errorf("production before the approval: %q", got)
	}
	c.Do("approve the promotion",
		chromedp.SetValue(chromedp.CSS("#pending-"+itoa(d.ID)+" input[name=comment]"), "go"),
		chromedp.Click(chromedp.CSS("#approve-"+itoa(d.ID))),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if got := c.Text(".flash"); !strings.Contains(got, "Deployment "+itoa(d.ID)+" is") {
		t.Errorf("flash = %q", got)
	}
	waitState(d.ID, deploy.StateSucceeded)
	c.Do("reload the board", chromedp.Navigate(a.URL+"/orgs/acme/projects/web/deploy"), chromedp.WaitVisible(chromedp.CSS("#env-production")))
	if got := c.Text("#env-production .running"); !strings.HasPrefix(got, "release #1 runs") {
		t.Errorf("production after the approval: %q", got)
	}
	if got := c.Text("#deployments"); !strings.Contains(got, "maria approved") {
		t.Errorf("history does not show the approval:\n%s", got)
	}
	if shot := os.Getenv("RAMPART_SCREENSHOTS"); shot != "" {
		if png, err := chromedp.Run(c.Ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(shot, "deploy-board.png"), png, 0o644)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
