package advisory_test

import (
	"archive/zip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/testenv"
)

// vulndbModule is the Go vulnerability database the tests use: real OSV
// records, fetched from the Go module proxy by the tests themselves.
const vulndbModule = "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018"

var (
	vulndbOnce sync.Once
	vulndbPath string
	vulndbErr  string
)

// vulndbOSV returns the data/osv directory of the Go vulnerability
// database in the module cache, downloading the module if needed.
func vulndbOSV(t testing.TB) string {
	t.Helper()
	gobin := testenv.LookPath(t, "go")
	vulndbOnce.Do(func() {
		cmd := exec.Command(gobin, "mod", "download", "-json", vulndbModule)
		cmd.Dir = os.TempDir() // outside any module: nothing of ours changes
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
		out, err := cmd.Output()
		var m struct{ Dir, Error string }
		if jerr := json.Unmarshal(out, &m); jerr != nil || m.Error != "" || err != nil {
			vulndbErr = strings.TrimSpace("go mod download " + vulndbModule + ": " + m.Error + " " + errString(err))
			return
		}
		vulndbPath = filepath.Join(m.Dir, "data", "osv")
	})
	if vulndbPath == "" {
		testenv.Missing(t, vulndbErr)
	}
	return vulndbPath
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}

// openDB opens a fresh advisory database in a temporary directory.
func openDB(t testing.TB) *advisory.DB {
	t.Helper()
	db, err := advisory.Open(t.Context(), filepath.Join(t.TempDir(), "advisories.db"))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writeRecords writes OSV records (JSON text) into a new directory, one
// file per record named after its id (or file%d when it has none).
func writeRecords(t testing.TB, records ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, r := range records {
		var m struct{ ID string }
		_ = json.Unmarshal([]byte(r), &m)
		name := m.ID
		if name == "" {
			name = "file" + string(rune('a'+i))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(r), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// zipDir zips every file directly inside dir into a new archive, the way
// OSV lays out all.zip.
func zipDir(t testing.TB, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ids lists the rule ids of findings, sorted and deduplicated.
func ids(fs []report.Finding) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fs {
		if !seen[f.RuleID] {
			seen[f.RuleID] = true
			out = append(out, f.RuleID)
		}
	}
	sort.Strings(out)
	return out
}

// byID indexes findings by rule id (the first of each).
func byID(fs []report.Finding) map[string]report.Finding {
	m := map[string]report.Finding{}
	for _, f := range fs {
		if _, ok := m[f.RuleID]; !ok {
			m[f.RuleID] = f
		}
	}
	return m
}

func goPkg(name, version string) report.Package {
	return report.Package{Name: name, Version: version, Ecosystem: "Go", Locations: []string{"go.mod"}}
}
