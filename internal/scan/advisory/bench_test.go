package advisory_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/report"
)

// vulndbModules lists the distinct Go module paths the Go vulnerability
// database names, sorted.
func vulndbModules(b *testing.B, dir string) []string {
	b.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Affected []struct{ Package struct{ Name string } }
		}
		if err := json.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
		for _, a := range r.Affected {
			seen[a.Package.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// BenchmarkMatch matches inventories against the whole Go vulnerability
// database: a typical module (150 dependencies, half of them with
// advisories, plus the standard library) and every module the database
// names at a vulnerable version.
func BenchmarkMatch(b *testing.B) {
	dir := vulndbOSV(b)
	db, err := advisory.Open(b.Context(), filepath.Join(b.TempDir(), "advisories.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Import(b.Context(), dir); err != nil {
		b.Fatal(err)
	}
	mods := vulndbModules(b, dir)
	typical := []report.Package{{Name: "stdlib", Version: "1.22.1", Ecosystem: "Go", Locations: []string{"go.mod"}}}
	for i := 0; len(typical) < 151; i++ {
		name := mods[i*len(mods)/150]
		if i%2 == 1 {
			name = "example.com/clean/" + name // a module no advisory names
		}
		typical = append(typical, report.Package{Name: name, Version: "0.1.0", Ecosystem: "Go", Locations: []string{"go.mod"}})
	}
	var all []report.Package
	for _, m := range mods {
		all = append(all, report.Package{Name: m, Version: "0.0.1", Ecosystem: "Go", Locations: []string{"go.mod"}})
	}
	for _, bc := range []struct {
		name string
		pkgs []report.Package
	}{{"typical", typical}, {"every-module", all}} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				fs, err := db.Match(b.Context(), bc.pkgs)
				if err != nil {
					b.Fatal(err)
				}
				n = len(fs)
			}
			b.ReportMetric(float64(n), "findings")
		})
	}
}

// BenchmarkImport imports the whole Go vulnerability database into a fresh
// database.
func BenchmarkImport(b *testing.B) {
	dir := vulndbOSV(b)
	for b.Loop() {
		b.StopTimer()
		db, err := advisory.Open(b.Context(), filepath.Join(b.TempDir(), "advisories.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := db.Import(b.Context(), dir); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
}
