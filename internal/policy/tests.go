package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/rampartsec/rampart/internal/apperr"
)

// TestResult is the outcome of one Rego unit test (a rule named test_…
// in a *_test.rego file).
type TestResult struct {
	// Name is PACKAGE.RULE, e.g. rampart.tests.pre_deploy.test_unsigned_image_denied.
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Pass     bool          `json:"pass"`
	Skipped  bool          `json:"skipped,omitempty"`
	Error    string        `json:"error,omitempty"`
	Output   string        `json:"output,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// TestOptions select and bound the tests RunTests runs.
type TestOptions struct {
	// Run is a regular expression tests' names must match ("" for all).
	Run string
	// Timeout bounds each test (DefaultTimeout when zero).
	Timeout time.Duration
	// SkipLibraryTests leaves the built-in library's tests out (its
	// policies are still compiled in): for testing a team's bundle.
	SkipLibraryTests bool
}

// RunTests runs the Rego unit tests of the bundles against their
// policies, as `opa test` would: every module of every bundle, tests
// included, compiled together with the merged settings. Results are
// ordered by name.
func RunTests(ctx context.Context, bundles []*Bundle, opt TestOptions) ([]TestResult, error) {
	modules := map[string]*ast.Module{}
	settings := map[string]any{}
	for _, b := range bundles {
		p, err := parseBundle(b)
		if err != nil {
			return nil, err
		}
		settings = mergeSettings(settings, p.config.Settings)
		for f, m := range p.modules {
			modules[f] = m
		}
		if b.BuiltIn && opt.SkipLibraryTests {
			continue
		}
		for f, m := range p.tests {
			modules[f] = m
		}
	}
	cfg, err := configModule(settings)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, err.Error())
	}
	modules["(settings)"] = cfg
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := ast.NewCompiler().WithCapabilities(capabilities()).WithEnablePrintStatements(true)
	r := tester.NewRunner().SetCompiler(c).SetModules(modules).CapturePrintOutput(true).
		RaiseBuiltinErrors(true).SetTimeout(timeout).Filter(opt.Run)
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		if errs, ok := err.(ast.Errors); ok {
			return nil, apperr.E(apperr.Invalid, "policies do not compile:\n%s", strings.Join(regoErrors(errs), "\n"))
		}
		return nil, apperr.Wrap(err, apperr.Invalid, "run policy tests: "+err.Error())
	}
	var out []TestResult
	for res := range ch {
		tr := TestResult{Name: strings.TrimPrefix(res.Package, "data.") + "." + res.Name, Pass: res.Pass(), Skipped: res.Skip,
			Duration: res.Duration, Output: string(res.Output)}
		if res.Location != nil {
			tr.File, tr.Line = res.Location.File, res.Location.Row
		}
		switch {
		case res.Error != nil:
			tr.Error = res.Error.Error()
		case res.Fail:
			tr.Error = "the test's body is false or undefined"
			if res.FailedAt != nil {
				tr.Error = fmt.Sprintf("failed at %s:%d: %s", res.FailedAt.Location.File, res.FailedAt.Location.Row, res.FailedAt.String())
			}
		}
		out = append(out, tr)
	}
	slices.SortFunc(out, func(a, b TestResult) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
