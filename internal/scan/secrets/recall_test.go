package secrets_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets"
	"github.com/rampartsec/rampart/internal/scan/secrets/secretstest"
)

func defaultEngine(t testing.TB) *secrets.Engine {
	t.Helper()
	e, err := secrets.New(secrets.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDefaultRules_AtLeast100WithTemplates(t *testing.T) {
	rules := secrets.DefaultRules()
	if len(rules) < 100 {
		t.Errorf("%d default rules, want at least 100", len(rules))
	}
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.ID)
		if r.Description == "" || r.Severity == report.SeverityUnknown || len(r.Keywords) == 0 {
			t.Errorf("rule %s: needs a description, a severity and keywords", r.ID)
		}
		for _, k := range r.Keywords {
			if k != strings.ToLower(k) {
				t.Errorf("rule %s: keyword %q is not lower case", r.ID, k)
			}
		}
	}
	slices.Sort(ids)
	if diff := cmp.Diff(ids, secretstest.RuleIDs()); diff != "" {
		t.Errorf("every rule needs a planted-secret template (-rules +templates):\n%s", diff)
	}
}

// TestRecall_PlantedSecrets plants synthetic secrets of every supported
// format and requires each to be found by its rule, on its line, without
// any finding showing a whole secret.
func TestRecall_PlantedSecrets(t *testing.T) {
	e := defaultEngine(t)
	corpus := secretstest.Generate(1, 3)
	byPath := map[string][]report.Finding{}
	for _, f := range corpus.Files {
		byPath[f.Path] = e.Scan(f.Path, f.Data)
	}
	missed := 0
	for _, p := range corpus.Planted {
		found := false
		for _, f := range byPath[p.Path] {
			if f.RuleID == p.RuleID && f.Location.StartLine <= p.EndLine && p.Line <= f.Location.EndLine {
				found = true
			}
		}
		if !found {
			missed++
			t.Errorf("%s: planted %s secret on line %d not found (findings: %v)", p.Path, p.RuleID, p.Line, ruleLines(byPath[p.Path]))
		}
	}
	t.Logf("recall: %d of %d planted secrets", len(corpus.Planted)-missed, len(corpus.Planted))

	for path, fs := range byPath {
		js, err := json.Marshal(fs)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range corpus.Planted {
			if p.Path == path && strings.Contains(string(js), p.Secret) {
				t.Errorf("%s: a finding shows the whole %s secret", path, p.RuleID)
			}
		}
		for _, f := range fs {
			if f.Kind != report.KindSecret || f.Secret == nil || f.Fingerprint == "" || f.Title == "" {
				t.Errorf("%s: incomplete finding %+v", path, f)
				continue
			}
			shown, ok := strings.CutSuffix(f.Secret.Redacted, "…")
			if !ok || utf8.RuneCountInString(shown) > 4 {
				t.Errorf("%s: redacted %q shows more than 4 characters", path, f.Secret.Redacted)
			}
		}
	}
}

func ruleLines(fs []report.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.RuleID+":"+itoa(f.Location.StartLine))
	}
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
