package exception

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func date(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestException_Matches(t *testing.T) {
	vuln := Target{IDs: []string{"GHSA-aaaa", "CVE-2024-0001"}, Image: "registry.local/acme/web:1.2@sha256:abcd",
		Repository: "acme/web", Environment: "production", Path: "go.mod"}
	tests := []struct {
		name string
		e    Exception
		t    Target
		want bool
	}{
		{"id", Exception{ID: "GHSA-aaaa"}, vuln, true},
		{"alias, any case", Exception{ID: "cve-2024-0001"}, vuln, true},
		{"other id", Exception{ID: "CVE-2024-9999"}, vuln, false},
		{"image repository covers tags and digests", Exception{ID: "CVE-2024-0001", Image: "registry.local/acme/web"}, vuln, true},
		{"image glob", Exception{ID: "CVE-2024-0001", Image: "registry.local/acme/*"}, vuln, true},
		{"other image", Exception{ID: "CVE-2024-0001", Image: "registry.local/acme/api"}, vuln, false},
		{"image with another tag", Exception{ID: "CVE-2024-0001", Image: "registry.local/acme/web:1.3"}, vuln, false},
		{"image with its tag and digest", Exception{ID: "CVE-2024-0001", Image: "registry.local/acme/web:1.2@sha256:abcd"}, vuln, true},
		{"image scope against no image", Exception{ID: "CVE-2024-0001", Image: "registry.local/acme/web"}, Target{IDs: []string{"CVE-2024-0001"}}, false},
		{"environment glob", Exception{ID: "GHSA-aaaa", Environment: "prod*"}, vuln, true},
		{"other environment", Exception{ID: "GHSA-aaaa", Environment: "staging"}, vuln, false},
		{"environment scope against none", Exception{ID: "GHSA-aaaa", Environment: "production"}, Target{IDs: []string{"GHSA-aaaa"}}, false},
		{"repository glob", Exception{ID: "GHSA-aaaa", Repository: "acme/*"}, vuln, true},
		{"other repository", Exception{ID: "GHSA-aaaa", Repository: "globex/*"}, vuln, false},
		{"paths", Exception{ID: "GHSA-aaaa", Paths: []string{"**/go.mod"}}, vuln, true},
		{"paths against no path", Exception{Paths: []string{"**"}}, Target{IDs: []string{"X"}}, false},
		{"paths outside", Exception{Paths: []string{"deploy/**"}}, Target{IDs: []string{"X"}, Path: "src/a.go"}, false},
		{"fingerprint", Exception{Fingerprint: "f00d"}, Target{IDs: []string{"X"}, Fingerprint: "f00d"}, true},
		{"other fingerprint", Exception{Fingerprint: "f00d"}, Target{IDs: []string{"X"}, Fingerprint: "beef"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Matches(tt.t); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestException_ExpiresAtTheEndOfItsDay(t *testing.T) {
	e := Exception{ID: "A", Reason: "r", Expires: date("2026-11-25")}
	target := Target{IDs: []string{"A"}}
	for _, tt := range []struct {
		now     time.Time
		applies bool
	}{
		{time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 11, 25, 23, 59, 59, 0, time.UTC), true},
		{time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := e.Applies(target, tt.now); got != tt.applies {
			t.Errorf("at %v Applies = %v, want %v", tt.now, got, tt.applies)
		}
		if e.Expired(tt.now) == tt.applies {
			t.Errorf("at %v Expired = %v", tt.now, !tt.applies)
		}
	}
	never := Exception{ID: "A", Reason: "r"}
	if !never.Applies(target, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("an exception without expiry stopped applying")
	}
}

func TestException_Validate(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		e    Exception
		want string
	}{
		{"valid", Exception{ID: "A", Reason: "r", Image: "reg/acme/*", Environment: "prod-*", Repository: "acme/*"}, ""},
		{"nothing to match", Exception{Reason: "r", Image: "reg/acme/web"}, "needs an id, paths or a fingerprint"},
		{"no reason", Exception{ID: "A"}, "needs a reason"},
		{"reason too long", Exception{ID: "A", Reason: strings.Repeat("r", 501)}, "single lines"},
		{"control character", Exception{ID: "A\x07", Reason: "r"}, "single lines"},
		{"newline in image", Exception{ID: "A", Reason: "r", Image: "a\nb"}, "image must be a single line"},
		{"long owner", Exception{ID: "A", Reason: "r", Owner: long}, "owner must be a single line"},
		{"bad path glob", Exception{ID: "A", Reason: "r", Paths: []string{"a/["}}, "invalid path glob"},
		{"bad environment glob", Exception{ID: "A", Reason: "r", Environment: "prod-["}, "invalid environment glob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate("exception")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParse_Exceptions(t *testing.T) {
	in := `exceptions:
  - id: CVE-2024-0001
    image: registry.local/acme/web
    environment: staging
    reason: "not reachable: the parser is never called"
    owner: platform-team
    expires: 2027-03-31
  - id: RMP-ADM-004
    repository: acme/*
    reason: node exporter needs the host's /proc
`
	got, err := Parse("exceptions.yaml", strings.NewReader(in), KeyExceptions)
	if err != nil {
		t.Fatal(err)
	}
	want := []Exception{
		{ID: "CVE-2024-0001", Image: "registry.local/acme/web", Environment: "staging", Reason: "not reachable: the parser is never called",
			Owner: "platform-team", Expires: date("2027-03-31"), Source: "exceptions.yaml", Line: 2},
		{ID: "RMP-ADM-004", Repository: "acme/*", Reason: "node exporter needs the host's /proc", Source: "exceptions.yaml", Line: 8},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if got[0].Where() != "exceptions.yaml:2" || got[0].What() != "CVE-2024-0001 in image registry.local/acme/web, environment staging" {
		t.Errorf("Where/What = %q, %q", got[0].Where(), got[0].What())
	}
	// The other list key is an unknown field: files are not mixed up.
	if _, err := Parse("exceptions.yaml", strings.NewReader(in), KeySuppressions); err == nil || !strings.Contains(err.Error(), "field exceptions not found") {
		t.Errorf("exceptions read as suppressions: %v", err)
	}
	if _, err := Parse("x", strings.NewReader("exceptions:\n- id: A\n"), KeyExceptions); err == nil || err.Error() != "x:2: an exception needs a reason" {
		t.Errorf("error = %v", err)
	}
	big := strings.NewReader("exceptions: []\n" + strings.Repeat("#", MaxFileSize))
	if _, err := Parse("big", big, KeyExceptions); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("exceptions:\n- id: A\n  reason: r\n  image: 'reg/a/*'\n  expires: 2027-01-01\n")
	f.Add("exceptions:\n- paths: ['**/x']\n  reason: r\n  environment: prod\n")
	f.Add("exceptions: [{fingerprint: f, reason: r}]")
	f.Add("a: &a [*a]")
	f.Fuzz(func(t *testing.T, in string) {
		list, err := Parse("fuzz", strings.NewReader(in), KeyExceptions)
		if err != nil {
			return
		}
		for _, e := range list {
			if err := e.Validate("exception"); err != nil {
				t.Fatalf("accepted an invalid exception %+v: %v", e, err)
			}
			e.Matches(Target{IDs: []string{"A"}, Path: "x", Image: "reg/a/b:1", Environment: "prod", Repository: "a/b"})
		}
	})
}

func TestDate_JSON(t *testing.T) {
	e := Exception{ID: "A", Reason: "r", Expires: date("2027-03-31")}
	b, err := json.Marshal(e)
	if err != nil || !strings.Contains(string(b), `"expires":"2027-03-31"`) {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back Exception
	if err := json.Unmarshal(b, &back); err != nil || !back.Expires.Equal(e.Expires.Time) {
		t.Errorf("Unmarshal = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"expires": "next week"}`), &back); err == nil {
		t.Error("a bad date was accepted")
	}
	if b, _ := json.Marshal(Exception{ID: "A"}); strings.Contains(string(b), "expires") {
		t.Errorf("no expiry marshals as %s", b)
	}
}
