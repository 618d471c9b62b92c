// Package browsertest drives a headless Chromium over the DevTools
// protocol (chromedp) for end-to-end tests of Rampart's pages: a fresh
// profile per test, steps with a timeout, and the page's console and
// uncaught exceptions logged when the test fails.
package browsertest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// StepTimeout bounds one step of a test in the browser.
const StepTimeout = 30 * time.Second

// Chrome is a headless Chromium driven over the DevTools protocol.
type Chrome struct {
	t *testing.T
	// Ctx is the browser tab's context, for chromedp calls of one's own.
	Ctx context.Context

	mu      sync.Mutex
	console []string
}

// Start starts the chromium at path (see testenv.LookPath) with a fresh
// profile; it is stopped when the test ends.
func Start(t *testing.T, path string) *Chrome {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	c := &Chrome{t: t, Ctx: ctx}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		if t.Failed() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, l := range c.console {
				t.Log("chromium:", l)
			}
		}
	})
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			line = string(ev.Type) + ": " + strings.Join(args, " ")
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			line = "exception: " + d.Text
			if d.Exception != nil {
				line += " " + d.Exception.Description
			}
		default:
			return
		}
		c.mu.Lock()
		c.console = append(c.console, line)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Do performs actions or fails the test, naming the step and showing where
// the browser is.
func (c *Chrome) Do(step string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.Ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.Fatal(step, err)
	}
}

// Fatal fails the test at step with err, showing the page's location and
// the text of its main element.
func (c *Chrome) Fatal(step string, err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.Ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	c.t.Fatalf("%s: %v\nat %s:\n%s", step, err, loc, body)
}

// Location returns the URL of the page.
func (c *Chrome) Location() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.Ctx, StepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		c.Fatal("read the location", err)
	}
	return loc
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](c *Chrome, step, expr string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.Ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.Fatal(step, err)
	}
	return v
}

// Call sends a DevTools command to the page's target.
func Call[P, R any](c *Chrome, step string, cmd cdp.Command[P, R], params P) R {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.Ctx, StepTimeout)
	defer cancel()
	r, err := chromedp.Call(ctx, cmd, params)
	if err != nil {
		c.Fatal(step, err)
	}
	return r
}

// Text returns the text of the first element matching sel, once visible.
func (c *Chrome) Text(sel string) string {
	c.t.Helper()
	c.Do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	ctx, cancel := context.WithTimeout(c.Ctx, StepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.Fatal("read "+sel, err)
	}
	return strings.TrimSpace(s)
}
