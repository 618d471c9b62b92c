package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestBrowser_RunPage follows a running job's log live in Chromium: the
// run list links to the run, whose page shows the job graph and streams
// the log (ANSI colours as styled spans) until the job ends.
func TestBrowser_RunPage(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) { c.Pipeline.Executor = "host" }))
	// The build waits for the test to let it finish (host executor: it
	// sees the machine's files).
	gate := filepath.Join(t.TempDir(), "go")
	w.push(t, map[string]string{pipeline.DefinitionPath: `jobs:
  build:
    steps:
      - run: printf '\033[32mcompiled\033[0m\n'; while [ ! -e ` + gate + ` ]; do sleep 0.1; done; echo 'build done'
  test:
    needs: [build]
    steps: [{run: echo tested}]
`})
	c := browsertest.Start(t, chromium)
	base := w.a.URL
	c.Do("sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), "admin"),
		chromedp.SetValue(chromedp.CSS("#password"), apptest.AdminPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#account-link")),
	)
	c.Do("open the run from the list",
		chromedp.Navigate(base+"/orgs/acme/repos/app/pipelines"),
		chromedp.Click(chromedp.CSS("a.run-link")),
		chromedp.WaitVisible(chromedp.CSS("#job-graph")),
	)
	if cols := browsertest.Eval[int](c, "graph columns", `document.querySelectorAll("#job-graph .graph-col").length`); cols != 2 {
		t.Errorf("job graph has %d columns; want 2 (build, then test)", cols)
	}
	// The build log shows what the job printed while it still runs, then
	// grows and ends with the job.
	c.Do("see the log while the job runs",
		chromedp.Poll[chromedp.Void](`(function(){var p=document.querySelector("pre.log");return p && p.textContent.indexOf("compiled")>=0;})()`,
			chromedp.WithPollingTimeout(30*time.Second)),
	)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Do("wait for the live log to end",
		chromedp.Poll[chromedp.Void](`(function(){var p=document.querySelector("pre.log");return p && p.textContent.indexOf("build done")>=0 && p.getAttribute("data-ended")==="success";})()`,
			chromedp.WithPollingTimeout(30*time.Second)),
	)
	if green := browsertest.Eval[string](c, "coloured span", `(document.querySelector("pre.log .fg-32")||{}).textContent||""`); !strings.Contains(green, "compiled") {
		t.Errorf("green span = %q; want the ANSI-coloured text", green)
	}
	w.waitRun(t, 1)
	c.Do("re-run from the page",
		chromedp.Navigate(base+"/orgs/acme/repos/app/pipelines/1"),
		chromedp.WaitVisible(chromedp.CSS("#rerun-run")),
		chromedp.Click(chromedp.CSS("#rerun-run")),
	)
	c.Do("land on run #2", chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "run #2")]`)))
	if loc := c.Location(); !strings.HasSuffix(loc, "/pipelines/2") && !strings.Contains(loc, "/pipelines/2?") {
		t.Errorf("after re-run the browser is at %s; want run #2", loc)
	}
}
