package advisory_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/deps"
	"github.com/rampartsec/rampart/internal/scan/report"
)

var (
	sharedOnce sync.Once
	sharedDB   *advisory.DB
	sharedErr  error
	sharedDir  string
)

// TestMain removes the shared database the vulndb tests build once.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDB != nil {
		sharedDB.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// vulndb returns one database holding the whole Go vulnerability database,
// imported once for the tests that only read it.
func vulndb(t *testing.T) *advisory.DB {
	t.Helper()
	dir := vulndbOSV(t)
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "rampart-advisory-test-")
		if sharedErr != nil {
			return
		}
		sharedDB, sharedErr = advisory.Open(t.Context(), filepath.Join(sharedDir, "advisories.db"))
		if sharedErr != nil {
			return
		}
		_, sharedErr = sharedDB.Import(t.Context(), dir)
	})
	if sharedErr != nil {
		t.Fatalf("import the Go vulnerability database: %v", sharedErr)
	}
	return sharedDB
}

// countRecords counts the OSV files of dir and the withdrawn ones, reading
// them independently of the package under test.
func countRecords(t *testing.T, dir string) (n, withdrawn int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		n++
		if _, ok := m["withdrawn"]; ok {
			withdrawn++
		}
	}
	return n, withdrawn
}

func TestVulnDB_ImportDirectoryAndZip(t *testing.T) {
	dir := vulndbOSV(t)
	n, withdrawn := countRecords(t, dir)
	if n < 4000 || withdrawn == 0 {
		t.Fatalf("the Go vulnerability database holds %d records, %d withdrawn: not the data the test expects", n, withdrawn)
	}
	ctx := t.Context()
	db := openDB(t)
	res, err := db.Import(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &advisory.ImportResult{Files: n, Added: n, Ecosystems: []string{"Go"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("first import (-want +got):\n%s", diff)
	}
	st, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Advisories != n || st.Withdrawn != withdrawn {
		t.Errorf("status counts %d advisories, %d withdrawn; want %d, %d", st.Advisories, st.Withdrawn, n, withdrawn)
	}
	if len(st.Ecosystems) != 1 || st.Ecosystems[0].Name != "Go" || st.Ecosystems[0].Advisories != n ||
		st.Ecosystems[0].Withdrawn != withdrawn || st.Ecosystems[0].Source != dir {
		t.Errorf("status ecosystems = %+v; want Go with %d advisories (%d withdrawn) from %s", st.Ecosystems, n, withdrawn, dir)
	}
	if st.LastImport.IsZero() || !st.LastUpdate.IsZero() {
		t.Errorf("last import %v, last update %v; want an import and no update", st.LastImport, st.LastUpdate)
	}
	pkgs := []report.Package{goPkg("golang.org/x/text", "0.3.7"), goPkg("stdlib", "1.19.0")}
	before, err := db.Match(ctx, pkgs)
	if err != nil {
		t.Fatal(err)
	}

	// The same data again changes nothing.
	res, err = db.Import(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	want = &advisory.ImportResult{Files: n, Unchanged: n, Ecosystems: []string{"Go"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("second import (-want +got):\n%s", diff)
	}
	after, err := db.Match(ctx, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("findings changed after importing the same data again (-before +after):\n%s", diff)
	}
	st2, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Advisories != st.Advisories || st2.Withdrawn != st.Withdrawn {
		t.Errorf("status after re-import: %d/%d advisories/withdrawn, before %d/%d", st2.Advisories, st2.Withdrawn, st.Advisories, st.Withdrawn)
	}

	// The same records as OSV's all.zip give the same database.
	zipPath := zipDir(t, dir)
	res, err = db.Import(ctx, zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged != n || res.Added != 0 || res.Updated != 0 {
		t.Errorf("zip into the same database: %+v; want all %d unchanged", res, n)
	}
	db2 := openDB(t)
	res, err = db2.Import(ctx, zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != n || len(res.Notes) != 0 {
		t.Errorf("zip into a fresh database: %+v; want %d added", res, n)
	}
	fromZip, err := db2.Match(ctx, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, fromZip); diff != "" {
		t.Errorf("findings from the zip differ from those of the directory (-dir +zip):\n%s", diff)
	}
}

func TestVulnDB_MatchKnownVulnerableModules(t *testing.T) {
	db := vulndb(t)
	// A go.mod as a project would have it, inventoried by package deps.
	gomod := `module example.com/vulnerable

require (
	github.com/dgrijalva/jwt-go v3.2.0+incompatible
	github.com/gin-gonic/gin v1.7.0
	github.com/google/go-cmp v0.7.0 // no advisory
	github.com/gorilla/websocket v1.4.0 // indirect
	github.com/prometheus/client_golang v1.11.0
	golang.org/x/text v0.3.7
	gopkg.in/yaml.v2 v2.2.3 // indirect
)
`
	pkgs, notes, err := deps.Inventory(t.Context(), fstest.MapFS{"go.mod": {Data: []byte(gomod)}}, deps.Options{})
	if err != nil || len(notes) != 0 || len(pkgs) != 7 {
		t.Fatalf("inventory: %d packages, notes %v, %v", len(pkgs), notes, err)
	}
	fs, err := db.Match(t.Context(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	// Every advisory of these modules whose range holds the version; the
	// ones fixed at or below it (GO-2021-0113 fixed in x/text 0.3.7,
	// GO-2021-0061 in yaml.v2 2.2.3, GO-2020-0001 in gin 1.6.0) are not.
	want := []string{
		"GO-2020-0017",                 // jwt-go: introduced only, never fixed
		"GO-2020-0019", "GO-2026-6278", // websocket
		"GO-2020-0036", "GO-2022-0956", // yaml.v2
		"GO-2021-0052", "GO-2023-1737", // gin
		"GO-2022-0322",                                 // client_golang
		"GO-2022-1059", "GO-2026-5970", "GO-2026-6629", // x/text
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, ids(fs)); diff != "" {
		t.Fatalf("advisories (-want +got):\n%s", diff)
	}
	got := byID(fs)
	checks := []struct {
		id, pkg, fixed string
		aliases        []string
	}{
		{"GO-2022-1059", "golang.org/x/text", "0.3.8", []string{"CVE-2022-32149", "GHSA-69ch-w2m2-3vjp"}},
		{"GO-2022-0956", "gopkg.in/yaml.v2", "2.2.4", []string{"CVE-2022-3064", "GHSA-6q6q-88xp-6f2r"}},
		{"GO-2023-1737", "github.com/gin-gonic/gin", "1.9.1", []string{"CVE-2023-29401", "GHSA-2c4m-59x9-fr2g"}},
		{"GO-2022-0322", "github.com/prometheus/client_golang", "1.11.1", []string{"CVE-2022-21698", "GHSA-cg3q-j54f-5p7p"}},
		{"GO-2020-0017", "github.com/dgrijalva/jwt-go", "", []string{"CVE-2020-26160", "GHSA-w73w-5m7g-f7qc"}},
	}
	for _, c := range checks {
		f := got[c.id]
		if f.Vuln == nil {
			t.Errorf("%s: no finding", c.id)
			continue
		}
		if f.Vuln.Package.Name != c.pkg || f.Vuln.FixedVersion != c.fixed || f.Location.Path != "go.mod" {
			t.Errorf("%s: package %s, fixed %q, path %q; want %s, %q, go.mod", c.id, f.Vuln.Package.Name, f.Vuln.FixedVersion, f.Location.Path, c.pkg, c.fixed)
		}
		if diff := cmp.Diff(c.aliases, f.Vuln.Aliases); diff != "" {
			t.Errorf("%s aliases (-want +got):\n%s", c.id, diff)
		}
		// The Go database rates nothing: no CVSS vector, no textual rating.
		if f.Severity != report.SeverityUnknown || f.Vuln.CVSSVector != "" {
			t.Errorf("%s: severity %v (%q); the Go database carries none", c.id, f.Severity, f.Vuln.CVSSVector)
		}
		if f.Kind != report.KindVulnerability || f.Title == "" || f.Title == c.id || f.Fingerprint == "" {
			t.Errorf("%s: kind %q, title %q, fingerprint %q", c.id, f.Kind, f.Title, f.Fingerprint)
		}
		if c.fixed != "" && !strings.Contains(f.Remediation, c.fixed) {
			t.Errorf("%s: remediation %q does not name %s", c.id, f.Remediation, c.fixed)
		}
	}
}

func TestVulnDB_StandardLibraryRanges(t *testing.T) {
	db := vulndb(t)
	// GO-2022-0969 affects stdlib before 1.18.6 and 1.19.0-0 up to 1.19.1.
	tests := []struct {
		version string
		fixed   string // "" when GO-2022-0969 must not be reported
	}{
		{"1.17.0", "1.18.6"},
		{"1.18.5", "1.18.6"},
		{"1.18.6", ""},
		{"1.19.0", "1.19.1"},
		{"1.19.1", ""},
		{"1.20.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			fs, err := db.Match(t.Context(), []report.Package{goPkg("stdlib", tt.version)})
			if err != nil {
				t.Fatal(err)
			}
			f, ok := byID(fs)["GO-2022-0969"]
			if tt.fixed == "" {
				if ok {
					t.Fatalf("GO-2022-0969 reported for Go %s", tt.version)
				}
				return
			}
			if !ok {
				t.Fatalf("GO-2022-0969 not reported for Go %s", tt.version)
			}
			if f.Vuln.FixedVersion != tt.fixed {
				t.Errorf("fixed version %q; want %q", f.Vuln.FixedVersion, tt.fixed)
			}
		})
	}
}

func TestVulnDB_WithdrawnSkipped(t *testing.T) {
	db := vulndb(t)
	fs, err := db.Match(t.Context(), []report.Package{
		goPkg("k8s.io/kubernetes", "1.20.0"),
		goPkg("github.com/gravitational/teleport", "4.0.0+incompatible"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := byID(fs)
	// Each of these is withdrawn and covers every version.
	for _, id := range []string{"GO-2022-0617", "GO-2024-2442", "GO-2024-2445"} {
		if _, ok := got[id]; ok {
			t.Errorf("withdrawn advisory %s reported", id)
		}
	}
	// The packages do have live advisories: the check above is not vacuous.
	k8s, teleport := 0, 0
	for _, f := range fs {
		switch f.Vuln.Package.Name {
		case "k8s.io/kubernetes":
			k8s++
		case "github.com/gravitational/teleport":
			teleport++
		}
	}
	if k8s == 0 || teleport == 0 {
		t.Errorf("%d kubernetes and %d teleport findings; want some of each", k8s, teleport)
	}
}
