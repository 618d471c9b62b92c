package secrets_test

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets"
)

// Real tokens made by internal/identity's token code (from a seeded
// random source), so the checksum rule is checked against the code that
// issues them rather than against itself.
const (
	realToken1 = "rpt_vF7U4YOYLkq6cSDlQnFh3UDT5HoAxm26EXNs5Iwy37mdU6"
	realToken2 = "rpt_vxZJ02kOa9uUe1ZtKqy5VW8eOy1opeo3090cBWlJ0u5QM8"
)

type hit struct {
	Rule            string
	Line, Col, End  int
	Redacted        string
	EndLine         int
	FingerprintSize int
}

func hits(fs []report.Finding) []hit {
	var out []hit
	for _, f := range fs {
		h := hit{Rule: f.RuleID, Line: f.Location.StartLine, Col: f.Location.StartCol, End: f.Location.EndCol,
			EndLine: f.Location.EndLine, FingerprintSize: len(f.Fingerprint)}
		if f.Secret != nil {
			h.Redacted = f.Secret.Redacted
		}
		out = append(out, h)
	}
	return out
}

func TestEngine_Scan(t *testing.T) {
	e := defaultEngine(t)
	ghp := "ghp_" + strings.Repeat("aB3", 12)
	for _, tt := range []struct {
		name, path, data string
		want             []hit
	}{
		{
			name: "position of the secret, in runes",
			path: "main.go",
			data: "package main\n\n// héllo\nvar tok = \"" + ghp + "\"\n",
			want: []hit{{Rule: "github-pat", Line: 4, Col: 12, End: 52, EndLine: 4, Redacted: "ghp_…", FingerprintSize: 32}},
		},
		{
			name: "Rampart tokens from identity pass their checksum",
			path: "ci.env",
			data: "RAMPART_TOKEN=" + realToken1 + "\nOTHER=" + realToken2 + "\n",
			want: []hit{
				{Rule: "rampart-api-token", Line: 1, Col: 15, End: 65, EndLine: 1, Redacted: "rpt_…", FingerprintSize: 32},
				{Rule: "rampart-api-token", Line: 2, Col: 7, End: 57, EndLine: 2, Redacted: "rpt_…", FingerprintSize: 32},
			},
		},
		{
			name: "a Rampart token with a wrong checksum is not one",
			path: "ci.env",
			data: "the docs show " + realToken1[:len(realToken1)-1] + "7 as an example\n",
		},
		{
			name: "inline allow marker",
			path: "fixtures.go",
			data: "tok := \"" + ghp + "\" // rampart:allow test fixture\n",
		},
		{
			name: "AWS documentation example key is allowlisted",
			path: "README.md",
			data: "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
		},
		{
			name: "placeholder password in a connection string",
			path: "docker-compose.yml",
			data: "DATABASE_URL: postgres://app:${DB_PASSWORD}@db:5432/app\n",
		},
		{
			name: "a specific rule wins over a generic one for the same secret",
			path: "settings.py",
			data: "api_key = \"" + ghp + "\"\n",
			want: []hit{{Rule: "github-pat", Line: 1, Col: 12, End: 52, EndLine: 1, Redacted: "ghp_…", FingerprintSize: 32}},
		},
		{
			name: "keyword in a long minified line",
			path: "app.min.js",
			data: strings.Repeat("var a=1;", 5000) + "k=\"" + ghp + "\";" + strings.Repeat("b(2);", 5000),
			want: []hit{{Rule: "github-pat", Line: 1, Col: 40004, End: 40044, EndLine: 1, Redacted: "ghp_…", FingerprintSize: 32}},
		},
		{
			name: "PEM private key spans lines",
			path: "id_rsa",
			data: "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n", 5) +
				"-----END RSA PRIVATE KEY-----\n",
			want: []hit{{Rule: "private-key", Line: 2, Col: 1, End: 1, EndLine: 7, Redacted: "MIIE…", FingerprintSize: 32}},
		},
		{
			name: "short secrets show less",
			path: ".env",
			data: "DATABASE_URL=mysql://root:Xk9#p2Lq@db/app\n",
			want: []hit{{Rule: "mysql-connection-string", Line: 1, Col: 27, End: 35, EndLine: 1, Redacted: "Xk…", FingerprintSize: 32}},
		},
		{
			name: "nothing in ordinary code",
			path: "server.go",
			data: "func (s *Server) token(key string) (string, error) {\n\treturn s.tokens[key], nil\n}\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := e.Scan(tt.path, []byte(tt.data))
			if diff := cmp.Diff(tt.want, hits(got)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			for _, f := range got {
				if f.Location.Path != tt.path || f.Kind != report.KindSecret || f.Remediation == "" {
					t.Errorf("finding %+v lacks its path, kind or remediation", f)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"ghp_0123456789abcdef": "ghp_…",
		"abcdefgh":             "ab…",
		"abc":                  "…",
		"pässwörd1":            "pä…",
	} {
		if got := secrets.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEngine_RuleOptions(t *testing.T) {
	rules := []secrets.Rule{
		{ID: "only-in-yaml", Description: "acme key", Regex: regexp.MustCompile(`acme_[a-z0-9]{16}`), Keywords: []string{"acme_"},
			Path: regexp.MustCompile(`\.ya?ml$`), Severity: report.SeverityHigh},
		{ID: "entropy", Description: "zed key", Regex: regexp.MustCompile(`zed=(\w{12})`), Keywords: []string{"zed="},
			Entropy: 3, Severity: report.SeverityLow},
		{ID: "stopwords", Description: "qq key", Regex: regexp.MustCompile(`qq_(\w{10})`), Keywords: []string{"qq_"},
			Allowlists: []secrets.Allowlist{{StopWords: []string{"sample"}}}},
		{ID: "line-allow", Description: "ww key", Regex: regexp.MustCompile(`ww_\w{10}`), Keywords: []string{"ww_"},
			Allowlists: []secrets.Allowlist{{RegexTarget: secrets.TargetLine, Regexes: string2re(`// fake`)}}},
		{ID: "and-allow", Description: "vv key", Regex: regexp.MustCompile(`vv_\w{10}`), Keywords: []string{"vv_"},
			Allowlists: []secrets.Allowlist{{MatchAll: true, Paths: string2re(`^test/`), StopWords: []string{"vv_0"}}}},
		{ID: "no-keywords", Description: "xx key", Regex: regexp.MustCompile(`XX-\d{6}`)},
		{ID: "sensitive-file", Description: "keystore", Path: regexp.MustCompile(`\.jks$`)},
	}
	e, err := secrets.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, data string
		want       []string
	}{
		{"a.yaml", "k: acme_0123456789abcdef", []string{"only-in-yaml"}},
		{"a.json", `{"k": "acme_0123456789abcdef"}`, nil},
		{"a.txt", "zed=aaaaaaaaaaaa zed=a1b2c3d4e5f6", []string{"entropy"}},
		{"a.txt", "qq_sample1234 qq_x8f7g6h5j4", []string{"stopwords"}},
		{"a.txt", "ww_0123456789 // fake\nww_0123456789", []string{"line-allow"}},
		{"test/a.txt", "vv_0123456789 vv_1123456789", []string{"and-allow"}},
		{"src/a.txt", "vv_0123456789", []string{"and-allow"}},
		{"a.txt", "id XX-123456", []string{"no-keywords"}},
		{"certs/prod.jks", "\x00binary", []string{"sensitive-file"}},
	} {
		var got []string
		for _, f := range e.Scan(tt.path, []byte(tt.data)) {
			got = append(got, f.RuleID)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %q (-want +got):\n%s", tt.path, tt.data, diff)
		}
	}
}

func string2re(exprs ...string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, e := range exprs {
		out = append(out, regexp.MustCompile(e))
	}
	return out
}

func TestNew_RefusesBadRules(t *testing.T) {
	re := regexp.MustCompile(`x(y)`)
	for _, tt := range []struct {
		name  string
		rules []secrets.Rule
		want  string
	}{
		{"no id", []secrets.Rule{{Regex: re}}, "needs an id"},
		{"duplicate", []secrets.Rule{{ID: "a", Regex: re}, {ID: "a", Regex: re}}, "rule a: defined twice"},
		{"nothing to match", []secrets.Rule{{ID: "a"}}, "rule a: needs a regex or a path"},
		{"secret group", []secrets.Rule{{ID: "a", Regex: re, SecretGroup: 2}}, "rule a: secret group 2"},
		{"empty keyword", []secrets.Rule{{ID: "a", Regex: re, Keywords: []string{""}}}, "rule a: keyword 1 is empty"},
		{"empty allowlist", []secrets.Rule{{ID: "a", Regex: re, Allowlists: []secrets.Allowlist{{}}}}, "rule a: allowlist 1 has no"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := secrets.New(tt.rules); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEngine_ConcurrentScans(t *testing.T) {
	e := defaultEngine(t)
	data := []byte("a\nGITHUB_TOKEN=ghp_" + strings.Repeat("Zq8", 12) + "\nb\n")
	want := hits(e.Scan("x.env", data))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if diff := cmp.Diff(want, hits(e.Scan("x.env", data))); diff != "" {
					t.Errorf("concurrent scan differs:\n%s", diff)
					return
				}
			}
		})
	}
	wg.Wait()
}
