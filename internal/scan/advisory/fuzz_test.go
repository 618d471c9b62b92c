package advisory

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/scan/report"
)

var fuzzSeeds = []string{
	`{"id":"GO-2022-0969","modified":"2023-01-01T00:00:00Z","aliases":["CVE-2022-27664"],
	  "affected":[{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.18.6"},{"introduced":"1.19.0-0"},{"fixed":"1.19.1"}]}]}]}`,
	`{"id":"DSA-1","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"last_affected":"1:3.0-1"},{"limit":"*"}]}],"versions":["1:2.0-1"]}],
	  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`,
	`{"id":"PYSEC-1","affected":[{"package":{"ecosystem":"PyPI","name":"Django_X"},"ecosystem_specific":{"severity":"HIGH"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1!0"},{"fixed":"2.0.post1"}]}]}]}`,
	`{"id":"X","withdrawn":"0001-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Maven","name":"a:b"},"ranges":[{"type":"ECOSYSTEM","events":[{"limit":"1.0-SNAPSHOT"}]}]}]}`,
	`{"id":"Y","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"},{"type":"CVSS_V2","score":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}]}`,
	`[]`, `{"id":""}`, `{"id":"A","affected":[{"ranges":[{"events":[{}]}]}]}`,
}

// FuzzParseRecord feeds arbitrary documents to the OSV reader and every
// affected entry it accepts to the range evaluator: neither may panic, and
// a stored spec must survive its JSON round trip.
func FuzzParseRecord(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "1.0.0")
	}
	f.Fuzz(func(t *testing.T, data []byte, version string) {
		r, err := parseRecord(data)
		if err != nil {
			return
		}
		if r.ID == "" {
			t.Fatal("accepted a record without id")
		}
		for _, a := range r.Affected {
			b, err := json.Marshal(a.Spec)
			if err != nil {
				t.Fatal(err)
			}
			var back affectedSpec
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("stored spec does not read back: %v", err)
			}
			affects(a.Ecosystem, back, version)
			if a.Severity.Level < report.SeverityUnknown || a.Severity.Level > report.SeverityCritical {
				t.Fatalf("severity %d out of range", a.Severity.Level)
			}
		}
	})
}

// FuzzImportZip imports arbitrary bytes as an OSV archive: a corrupt
// archive is an error or notes, never a panic.
func FuzzImportZip(f *testing.F) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, s := range fuzzSeeds[:3] {
		w, _ := zw.Create(string(rune('a'+i)) + ".json")
		w.Write([]byte(s))
	}
	zw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("PK\x03\x04"))
	dir := f.TempDir()
	db, err := Open(f.Context(), filepath.Join(dir, "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "all.zip")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := db.Import(t.Context(), p)
		if err == nil && res.Added+res.Updated+res.Unchanged+len(res.Notes) != res.Files {
			t.Fatalf("import accounted for %d of %d files: %+v", res.Added+res.Updated+res.Unchanged+len(res.Notes), res.Files, res)
		}
	})
}
