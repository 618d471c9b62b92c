package advisory_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// rangeCase is one hand-written OSV affected entry and the versions it
// must (fixed version, or "" when there is no fix) and must not ("-")
// affect.
type rangeCase struct {
	name     string
	eco      string // the package's ecosystem
	advEco   string // the advisory's, when different
	advName  string // the advisory's package name, when not the case name
	pkgName  string // the package's name, when not advName
	purl     string
	affected string // JSON members of the affected entry besides "package"
	versions map[string]string
}

var rangeCases = []rangeCase{
	{name: "introduced-0-fixed", eco: "npm",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]`,
		versions: map[string]string{"0.0.1": "1.2.0", "1.1.9": "1.2.0", "1.2.0": "-", "1.3.0": "-"}},
	{name: "introduced-only", eco: "Go",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.5.0"}]}]`,
		versions: map[string]string{"1.4.9": "-", "1.5.0": "", "9.0.0": ""}},
	{name: "last-affected", eco: "npm",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0.0"},{"last_affected":"1.4.2"}]}]`,
		versions: map[string]string{"0.9.0": "-", "1.0.0": "", "1.4.2": "", "1.4.3": "-"}},
	{name: "limit", eco: "Go",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"2.0.0"}]}]`,
		versions: map[string]string{"1.9.9": "", "2.0.0": "-", "2.5.0": "-"}},
	{name: "limit-star", eco: "Go",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"limit":"*"}]}]`,
		versions: map[string]string{"0.9.0": "-", "1.0.0": "", "7.0.0": ""}},
	{name: "multiple-ranges", eco: "crates.io",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0.0"},{"fixed":"1.1.0"}]},
			{"type":"ECOSYSTEM","events":[{"introduced":"2.0.0"},{"fixed":"2.1.0"}]}]`,
		versions: map[string]string{"0.5.0": "-", "1.0.5": "1.1.0", "1.5.0": "-", "2.0.0": "2.1.0", "2.1.0": "-"}},
	{name: "segments-lowest-fix", eco: "Go",
		affected: `"ranges":[{"type":"SEMVER","events":[{"fixed":"2.5.0"},{"introduced":"2.0.0"},{"fixed":"1.5.0"},{"introduced":"0"}]}]`,
		versions: map[string]string{"1.2.0": "1.5.0", "1.5.0": "-", "2.0.0": "2.5.0", "3.0.0": "-"}},
	{name: "versions-list", eco: "PyPI",
		affected: `"versions":["1.0","1.1"]`,
		versions: map[string]string{"1.0": "", "1.1.0": "", "1.2": "-", "0.9": "-"}},
	{name: "versions-list-and-range", eco: "PyPI",
		affected: `"versions":["1.0"],"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.1"},{"fixed":"1.3"}]}]`,
		versions: map[string]string{"1.0": "1.3", "1.1": "1.3", "1.3": "-", "0.9": "-"}},
	{name: "unparsable-event-ignored", eco: "Debian:12",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":":1"}]}]`,
		versions: map[string]string{"1.0-1": ""}},
	{name: "semver-prereleases", eco: "npm",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"2.0.0"}]}]`,
		versions: map[string]string{"1.0.0-rc.1": "-", "1.0.0": "2.0.0", "2.0.0-beta.1": "2.0.0", "2.0.0-rc.2": "2.0.0", "2.0.0": "-"}},
	{name: "go-prerelease-introduced", eco: "Go",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.19.0-0"},{"fixed":"1.19.1"}]}]`,
		versions: map[string]string{"1.18.9": "-", "1.19.0-rc.1": "1.19.1", "1.19.0": "1.19.1", "1.19.1": "-"}},
	{name: "go-pseudo-versions", eco: "Go",
		affected: `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.0.0-20220906165146-f3363e06e74c"}]}]`,
		versions: map[string]string{"0.0.0-20220525230936-793ad666bf5e": "0.0.0-20220906165146-f3363e06e74c", "0.0.0-20221004154528-8021a29435af": "-", "0.1.0": "-"}},
	{name: "debian-epochs", eco: "Debian:12",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:2.3-1"}]}]`,
		versions: map[string]string{"2.9-1": "1:2.3-1", "1:2.2-5": "1:2.3-1", "1:2.3-1": "-", "1:2.3-1+deb12u1": "-", "2:0.1-1": "-"}},
	{name: "debian-source-package", eco: "Debian:12", advName: "openssl", pkgName: "libssl3",
		purl:     "pkg:deb/debian/libssl3@VERSION?arch=amd64&distro=debian-12&source=openssl",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]`,
		versions: map[string]string{"3.0.11-1~deb12u2": "3.0.13-1~deb12u1", "3.0.13-1~deb12u1": "-"}},
	{name: "debian-other-release", eco: "Debian:12", advEco: "Debian:11",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"9.0-1"}]}]`,
		versions: map[string]string{"1.0-1": "-"}},
	{name: "maven-qualifiers", eco: "Maven", advName: "com.example:maven-qualifiers",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.13.0"}]}]`,
		versions: map[string]string{"2.12.7.1": "2.13.0", "2.13.0-SNAPSHOT": "2.13.0", "2.13.0-rc1": "2.13.0",
			"2.13.0.Final": "-", "2.13.0": "-", "2.13.1": "-"}},
	{name: "pypi-post-dev", eco: "PyPI",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]`,
		versions: map[string]string{"1.9.post1": "2.0.0", "2.0.0.dev1": "2.0.0", "2.0.0rc1": "2.0.0", "2.0.0": "-", "2.0.0.post1": "-",
			"1!1.0": "-"}},
	{name: "pypi-name-normalisation", eco: "PyPI", advName: "Zope.Interface_x", pkgName: "zope-interface-x",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5.0"}]}]`,
		versions: map[string]string{"4.7.1": "5.0"}},
	{name: "alpine", eco: "Alpine:v3.18",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.36.1-r2"}]}]`,
		versions: map[string]string{"1.36.1-r1": "1.36.1-r2", "1.36.1-r2": "-", "1.36.1-r10": "-"}},
	{name: "redhat-epoch-from-purl", eco: "Red Hat", advEco: "Red Hat:enterprise_linux:9::baseos",
		purl:     "pkg:rpm/redhat/redhat-epoch-from-purl@VERSION?arch=x86_64&epoch=1",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:3.0.7-16.el9"}]}]`,
		versions: map[string]string{"3.0.7-6.el9": "1:3.0.7-16.el9", "3.0.7-20.el9": "-"}},
	{name: "nuget-case", eco: "NuGet", advName: "Newtonsoft.Json.Case", pkgName: "newtonsoft.json.case",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"13.0.1"}]}]`,
		versions: map[string]string{"12.0.3": "13.0.1", "13.0.1": "-"}},
	{name: "rubygems-prerelease", eco: "RubyGems",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"6.0.0"},{"fixed":"6.1.7.1"}]}]`,
		versions: map[string]string{"6.1.7.1.rc1": "6.1.7.1", "6.1.7.1": "-", "5.2.0": "-"}},
	{name: "packagist", eco: "Packagist", advName: "vendor/Packagist",
		affected: `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"5.0.0"},{"fixed":"5.4.31"}]}]`,
		versions: map[string]string{"5.4.30": "5.4.31", "v5.4.29": "5.4.31", "5.4.31": "-"}},
	{name: "git-range-ignored", eco: "Go",
		affected: `"ranges":[{"type":"GIT","repo":"https://example.com/r","events":[{"introduced":"0"},{"fixed":"abc123"}]}]`,
		versions: map[string]string{"1.0.0": "-"}},
}

func (c rangeCase) advisoryName() string {
	if c.advName != "" {
		return c.advName
	}
	return c.name
}

func (c rangeCase) packageName() string {
	if c.pkgName != "" {
		return c.pkgName
	}
	return c.advisoryName()
}

func TestMatch_RangeSemantics(t *testing.T) {
	var records []string
	var pkgs []report.Package
	for i, c := range rangeCases {
		advEco := c.advEco
		if advEco == "" {
			advEco = c.eco
		}
		records = append(records, fmt.Sprintf(`{"id":"TEST-%d","modified":"2024-01-01T00:00:00Z","summary":"case %s",
			"affected":[{"package":{"ecosystem":%q,"name":%q},%s}]}`, i, c.name, advEco, c.advisoryName(), c.affected))
		for v := range c.versions {
			p := report.Package{Name: c.packageName(), Version: v, Ecosystem: c.eco, Locations: []string{"lock"}}
			if c.purl != "" {
				p.PURL = strings.Replace(c.purl, "VERSION", v, 1)
			}
			pkgs = append(pkgs, p)
		}
	}
	db := openDB(t)
	res, err := db.Import(t.Context(), writeRecords(t, records...))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 0 || res.Added != len(rangeCases) {
		t.Fatalf("import: %+v", res)
	}
	fs, err := db.Match(t.Context(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ name, version string }
	got := map[key]report.Finding{}
	for _, f := range fs {
		got[key{f.Vuln.Package.Name, f.Vuln.Package.Version}] = f
	}
	for i, c := range rangeCases {
		t.Run(c.name, func(t *testing.T) {
			for v, want := range c.versions {
				f, ok := got[key{c.packageName(), v}]
				switch {
				case want == "-" && ok:
					t.Errorf("%s %s: reported %s; want not affected", c.eco, v, f.RuleID)
				case want == "-":
				case !ok:
					t.Errorf("%s %s: not reported; want affected", c.eco, v)
				case f.RuleID != fmt.Sprintf("TEST-%d", i) || f.Vuln.FixedVersion != want:
					t.Errorf("%s %s: %s with fixed version %q; want TEST-%d with %q", c.eco, v, f.RuleID, f.Vuln.FixedVersion, i, want)
				}
			}
		})
	}
}

func TestMatch_MergesAliases(t *testing.T) {
	records := []string{
		// GitHub's advisory and the Go database's for the same module and
		// CVE: one finding under the GO- id.
		`{"id":"GHSA-aaaa-bbbb-cccc","modified":"2024-01-01T00:00:00Z","summary":"GitHub words","aliases":["CVE-2024-0001"],
		  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
		  "references":[{"type":"WEB","url":"https://example.com/ghsa"}],
		  "affected":[{"package":{"ecosystem":"Go","name":"example.com/mod"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}`,
		`{"id":"GO-2024-0001","modified":"2024-01-01T00:00:00Z","summary":"Go words","aliases":["CVE-2024-0001","GHSA-aaaa-bbbb-cccc"],
		  "references":[{"type":"WEB","url":"https://example.com/go"}],
		  "affected":[{"package":{"ecosystem":"Go","name":"example.com/mod"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.1"}]}]}]}`,
		// Another vulnerability of the same module stays apart.
		`{"id":"GHSA-dddd-eeee-ffff","modified":"2024-01-01T00:00:00Z","summary":"other","aliases":["CVE-2024-0002"],
		  "database_specific":{"severity":"LOW"},
		  "affected":[{"package":{"ecosystem":"Go","name":"example.com/mod"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
		// Two PyPI advisories that only share a CVE: one finding under
		// PYSEC-, whatever the order of ids.
		`{"id":"GHSA-1111-2222-3333","modified":"2024-01-01T00:00:00Z","summary":"py ghsa","aliases":["CVE-2024-0003"],
		  "database_specific":{"severity":"MODERATE"},
		  "affected":[{"package":{"ecosystem":"PyPI","name":"pkg"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0"}]}]}]}`,
		`{"id":"PYSEC-2024-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-0003"],
		  "affected":[{"package":{"ecosystem":"PyPI","name":"pkg"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0"}]}]}]}`,
		// The same CVE for another package does not join the PyPI group.
		`{"id":"GHSA-4444-5555-6666","modified":"2024-01-01T00:00:00Z","summary":"npm","aliases":["CVE-2024-0003"],
		  "affected":[{"package":{"ecosystem":"npm","name":"pkg"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
	}
	db := openDB(t)
	if _, err := db.Import(t.Context(), writeRecords(t, records...)); err != nil {
		t.Fatal(err)
	}
	fs, err := db.Match(t.Context(), []report.Package{
		goPkg("example.com/mod", "1.0.0"),
		{Name: "pkg", Version: "1.0", Ecosystem: "PyPI", Locations: []string{"requirements.txt", "sub/requirements.txt"}},
		{Name: "pkg", Version: "1.0.0", Ecosystem: "npm", Locations: []string{"package-lock.json"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		ID, Path, Pkg, Fixed, Title string
		Aliases                     []string
		Severity                    report.Severity
		Refs                        []string
	}
	var got []summary
	for _, f := range fs {
		got = append(got, summary{f.RuleID, f.Location.Path, f.Vuln.Package.Ecosystem + "/" + f.Vuln.Package.Name,
			f.Vuln.FixedVersion, f.Title, f.Vuln.Aliases, f.Severity, f.Vuln.References})
	}
	want := []summary{
		{"GHSA-dddd-eeee-ffff", "go.mod", "Go/example.com/mod", "", "other", []string{"CVE-2024-0002"}, report.SeverityLow, nil},
		{"GO-2024-0001", "go.mod", "Go/example.com/mod", "1.2.1", "Go words", []string{"CVE-2024-0001", "GHSA-aaaa-bbbb-cccc"},
			report.SeverityCritical, []string{"https://example.com/go", "https://example.com/ghsa"}},
		{"GHSA-4444-5555-6666", "package-lock.json", "npm/pkg", "", "npm", []string{"CVE-2024-0003"}, report.SeverityUnknown, nil},
		{"PYSEC-2024-1", "requirements.txt", "PyPI/pkg", "2.0", "py ghsa", []string{"CVE-2024-0003", "GHSA-1111-2222-3333"}, report.SeverityMedium, nil},
		{"PYSEC-2024-1", "sub/requirements.txt", "PyPI/pkg", "2.0", "py ghsa", []string{"CVE-2024-0003", "GHSA-1111-2222-3333"}, report.SeverityMedium, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	// One finding per location, each with its own stable fingerprint.
	if len(fs) == 5 && (fs[3].Fingerprint == fs[4].Fingerprint || fs[3].Fingerprint == "") {
		t.Errorf("fingerprints of two locations: %q, %q", fs[3].Fingerprint, fs[4].Fingerprint)
	}
	again, err := db.Match(t.Context(), []report.Package{goPkg("example.com/mod", "1.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[1].Fingerprint != fs[1].Fingerprint {
		t.Errorf("fingerprint not stable across scans")
	}
}

func TestMatch_Severity(t *testing.T) {
	tests := []struct {
		name   string
		fields string // JSON members of the record
		want   report.Severity
		score  float64
	}{
		{"cvss 3.1 critical", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]`, report.SeverityCritical, 9.8},
		{"cvss 3.1 medium", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"}]`, report.SeverityMedium, 5.4},
		{"cvss 3.0 low", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N"}]`, report.SeverityLow, 3.3},
		{"cvss 4.0 critical", `"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]`, report.SeverityCritical, 9.3},
		{"cvss 2 high", `"severity":[{"type":"CVSS_V2","score":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}]`, report.SeverityHigh, 7.5},
		{"v4 wins over v3", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
			{"type":"CVSS_V4","score":"CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"}]`, report.SeverityLow, 1},
		{"bad vector falls back to text", `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:X"}],"database_specific":{"severity":"HIGH"}`, report.SeverityHigh, 0},
		{"github moderate", `"database_specific":{"severity":"MODERATE"}`, report.SeverityMedium, 0},
		{"ubuntu priority", `"severity":[{"type":"Ubuntu","score":"medium"}]`, report.SeverityMedium, 0},
		{"none", `"database_specific":{"source":"x"}`, report.SeverityUnknown, 0},
	}
	var records []string
	var pkgs []report.Package
	for i, tt := range tests {
		records = append(records, fmt.Sprintf(`{"id":"SEV-%d","modified":"2024-01-01T00:00:00Z",%s,
			"affected":[{"package":{"ecosystem":"npm","name":"sev-%d"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`, i, tt.fields, i))
		pkgs = append(pkgs, report.Package{Name: fmt.Sprintf("sev-%d", i), Version: "1.0.0", Ecosystem: "npm"})
	}
	// Per-package ratings override the advisory's.
	records = append(records, `{"id":"SEV-PKG","modified":"2024-01-01T00:00:00Z","database_specific":{"severity":"LOW"},
		"affected":[{"package":{"ecosystem":"Debian:12","name":"sev-pkg"},"ecosystem_specific":{"urgency":"high"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`)
	pkgs = append(pkgs, report.Package{Name: "sev-pkg", Version: "1.0-1", Ecosystem: "Debian:12"})
	db := openDB(t)
	if _, err := db.Import(t.Context(), writeRecords(t, records...)); err != nil {
		t.Fatal(err)
	}
	fs, err := db.Match(t.Context(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(fs)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := got[fmt.Sprintf("SEV-%d", i)]
			if f.Vuln == nil {
				t.Fatal("not reported")
			}
			if f.Severity != tt.want || f.Vuln.CVSSScore != tt.score {
				t.Errorf("severity %v score %v (%q); want %v score %v", f.Severity, f.Vuln.CVSSScore, f.Vuln.CVSSVector, tt.want, tt.score)
			}
		})
	}
	if f := got["SEV-PKG"]; f.Severity != report.SeverityHigh {
		t.Errorf("per-package urgency: severity %v; want high", f.Severity)
	}
}

// TestMatch_Backends imports and matches on SQLite and PostgreSQL alike.
func TestMatch_Backends(t *testing.T) {
	dir := writeRecords(t,
		`{"id":"GHSA-aaaa-bbbb-cccc","modified":"2024-01-01T00:00:00Z","summary":"s","aliases":["CVE-2024-1"],
		  "affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}]}`,
		`{"id":"GHSA-wwww-xxxx-yyyy","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z",
		  "affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`)
	storetest.Each(t, func(t *testing.T, st *store.DB) {
		db, err := advisory.New(t.Context(), st)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.Import(t.Context(), dir)
		if err != nil || res.Added != 2 {
			t.Fatalf("import: %+v, %v", res, err)
		}
		fs, err := db.Match(t.Context(), []report.Package{{Name: "left-pad", Version: "1.1.0", Ecosystem: "npm"}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"GHSA-aaaa-bbbb-cccc"}, ids(fs)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		s, err := db.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if s.Advisories != 2 || s.Withdrawn != 1 || len(s.Ecosystems) != 1 || s.Ecosystems[0].Advisories != 2 {
			t.Errorf("status %+v", s)
		}
	}, advisory.Migrations)
}
