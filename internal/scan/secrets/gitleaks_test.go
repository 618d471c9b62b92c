package secrets_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets"
)

// A custom rule file of the kind teams keep next to gitleaks.
const customTOML = `
title = "acme secrets"

[extend]
useDefault = true
disabledRules = ["jwt"]

[[rules]]
id = "acme-internal-token"
description = "ACME internal service token"
regex = '''(?i)\b(acme_(?:live|test)_[a-z0-9]{24})\b'''
secretGroup = 1
entropy = 3.0
keywords = ["ACME_LIVE_", "acme_test_"]
tags = ["internal", "critical"]

  [[rules.allowlists]]
  description = "test fixtures"
  paths = ['''(^|/)testdata/''']

  [[rules.allowlists]]
  condition = "AND"
  regexTarget = "line"
  regexes = ['''example''']
  stopwords = ["acme_test_"]

[[rules]]
id = "acme-legacy-password"
description = "Legacy ACME password"
regex = '''acme_pw\s*=\s*"([^"]{8,})"'''
path = '''\.(cfg|ini)$'''

[[rules]]
id = "keystore-file"
description = "Java keystore"
path = '''\.jks$'''

[[allowlists]]
description = "generated docs"
paths = ['''^docs/generated/''']

[[allowlists]]
targetRules = ["acme-legacy-password"]
stopwords = ["changeme"]
`

func TestParseGitleaksTOML_CustomFile(t *testing.T) {
	rules, err := secrets.ParseGitleaksTOML(strings.NewReader(customTOML))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]secrets.Rule{}
	for _, r := range rules {
		ids[r.ID] = r
	}
	if _, ok := ids["jwt"]; ok {
		t.Error("disabled default rule jwt was kept")
	}
	if _, ok := ids["github-pat"]; !ok {
		t.Error("useDefault did not bring the default rules")
	}
	acme := ids["acme-internal-token"]
	if acme.Severity != report.SeverityCritical || acme.Scope != secrets.ScopeContent || !slices.Equal(acme.Keywords, []string{"acme_live_", "acme_test_"}) {
		t.Errorf("acme rule = %+v", acme)
	}

	e, err := secrets.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	token := "acme_live_0a1b2c3d4e5f6g7h8i9j0k1l"
	for _, tt := range []struct {
		path, data string
		want       []string
	}{
		{"cmd/main.go", "const t = \"" + token + "\"", []string{"acme-internal-token"}},
		{"pkg/testdata/fixture.txt", token, nil},
		{"docs/generated/api.md", token, nil},
		// AND: a line mentioning example whose secret has the stop word.
		{"cmd/a.go", "example: acme_test_0a1b2c3d4e5f6g7h8i9j0k1l", nil},
		{"cmd/a.go", "acme_test_0a1b2c3d4e5f6g7h8i9j0k1l", []string{"acme-internal-token"}},
		{"etc/app.ini", `acme_pw = "s3cr3t-Pa55"`, []string{"acme-legacy-password"}},
		{"etc/app.ini", `acme_pw = "changeme123"`, nil},
		{"etc/app.yaml", `acme_pw = "s3cr3t-Pa55"`, nil},
		{"release/store.jks", "anything", []string{"keystore-file"}},
		{"docs/generated/store.jks", "anything", nil},
	} {
		var got []string
		for _, f := range e.Scan(tt.path, []byte(tt.data)) {
			got = append(got, f.RuleID)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: %q (-want +got):\n%s", tt.path, tt.data, diff)
		}
	}
}

func TestParseGitleaksTOML_WithoutDefaults(t *testing.T) {
	rules, err := secrets.ParseGitleaksTOML(strings.NewReader(`
[[rules]]
id = "only"
regex = '''only_[0-9]{4}'''
[rules.allowlist]
regexes = ['''only_0000''']
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].ID != "only" || len(rules[0].Allowlists) != 1 || rules[0].Severity != report.SeverityHigh {
		t.Fatalf("rules = %+v", rules)
	}
}

func TestParseGitleaksTOML_Errors(t *testing.T) {
	for _, tt := range []struct {
		name, toml, want string
	}{
		{"invalid regex", "[[rules]]\nid = \"broken\"\nregex = '''(unclosed'''", `rule "broken": regex: error parsing regexp`},
		{"unknown rule field", "[[rules]]\nid = \"typo\"\nregx = 'x'", `rule "typo": unknown field "regx"`},
		{"unknown top-level field", "rulez = []", `top level: unknown field "rulez"`},
		{"unknown allowlist field", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\npath = ['x']", `rule "a" allowlist: unknown field "path"`},
		{"missing id", "[[rules]]\nregex = 'x'", "rule 1: missing id"},
		{"duplicate id", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules]]\nid = \"a\"\nregex = 'y'", `rule "a": defined twice`},
		{"nothing to match", "[[rules]]\nid = \"a\"\ndescription = 'x'", `rule "a": needs a regex or a path`},
		{"secret group too large", "[[rules]]\nid = \"a\"\nregex = 'x(y)'\nsecretGroup = 3", `rule "a": secretGroup 3`},
		{"bad allowlist regex", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\nregexes = ['(']", `rule "a": allowlist 1: regex "("`},
		{"empty allowlist", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\ndescription = 'nothing'", `rule "a": allowlist 1: needs at least one`},
		{"bad condition", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\ncondition = 'XOR'\nstopwords = ['x']", `unknown condition "XOR"`},
		{"bad regex target", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\nregexTarget = 'file'\nregexes = ['x']", `unknown regexTarget "file"`},
		{"composite rule", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.required]]\nid = \"b\"", `rule "a": composite rules`},
		{"unknown target rule", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[allowlists]]\ntargetRules = ['nope']\nstopwords = ['x']", `target rule "nope" does not exist`},
		{"extend path", "[extend]\npath = 'base.toml'", "path and url are not supported"},
		{"wrong type", "[[rules]]\nid = \"a\"\nregex = 'x'\nentropy = 'high'", "entropy"},
		{"not TOML", "[[rules]\nid = ", "gitleaks config"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := secrets.ParseGitleaksTOML(strings.NewReader(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestParseGitleaksTOML_GitleaksDefaults loads gitleaks' own default
// configuration (222 rules) from its module, when the module is at hand:
// every rule must load and compile.
func TestParseGitleaksTOML_GitleaksDefaults(t *testing.T) {
	path := gitleaksModuleFile(t, "config/gitleaks.toml")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := secrets.ParseGitleaksTOML(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < 200 {
		t.Errorf("%d rules loaded from gitleaks' defaults", len(rules))
	}
	e, err := secrets.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Scan("x.env", []byte("GITHUB_TOKEN=ghp_0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX\n"))
	if len(got) != 1 || got[0].RuleID != "github-pat" {
		t.Errorf("gitleaks' rules found %v in a GitHub token", hits(got))
	}
}

// gitleaksModuleFile returns a file of the gitleaks v8.30.1 module,
// downloading the module through the Go module proxy when needed.
func gitleaksModuleFile(t *testing.T, rel string) string {
	t.Helper()
	dir := goModDownload(t, "github.com/zricethezav/gitleaks/v8@v8.30.1")
	return filepath.Join(dir, filepath.FromSlash(rel))
}
