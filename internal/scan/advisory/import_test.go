package advisory_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/report"
)

func npmRecord(id, modified, summary, extra string) string {
	return fmt.Sprintf(`{"id":%q,"modified":%q,"summary":%q%s,
		"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}]}`,
		id, modified, summary, extra)
}

var lodash = []report.Package{{Name: "lodash", Version: "4.17.20", Ecosystem: "npm", Locations: []string{"package-lock.json"}}}

func TestImport_BadFilesAreNotes(t *testing.T) {
	dir := writeRecords(t, npmRecord("GHSA-good-good-good", "2024-01-01T00:00:00Z", "good", ""))
	bad := map[string]string{
		"truncated.json":  `{"id":"GHSA-x","affected":[`,
		"array.json":      `[1,2,3]`,
		"noid.json":       `{"summary":"no id"}`,
		"badid.json":      `{"id":"../../etc/passwd"}`,
		"twoevents.json":  `{"id":"GHSA-two","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}`,
		"badtime.json":    `{"id":"GHSA-time","modified":"yesterday"}`,
		"numbers.json":    `{"id":"GHSA-num","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":0}]}]}]}`,
		"ignored.txt":     `not json, and not looked at`,
		".hidden/x.json":  `not json either, in a hidden directory`,
		"nested/ok2.json": npmRecord("GHSA-nest-nest-nest", "2024-01-01T00:00:00Z", "nested", ""),
	}
	for name, body := range bad {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t)
	res, err := db.Import(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var notePaths []string
	for _, n := range res.Notes {
		notePaths = append(notePaths, n.Path)
		if n.Message == "" {
			t.Errorf("note for %s has no message", n.Path)
		}
	}
	want := []string{"array.json", "badid.json", "badtime.json", "noid.json", "numbers.json", "truncated.json", "twoevents.json"}
	if diff := cmp.Diff(want, notePaths); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	if res.Added != 2 || res.Files != 9 {
		t.Errorf("import: %d added of %d files; want 2 of 9", res.Added, res.Files)
	}
	fs, err := db.Match(t.Context(), lodash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GHSA-good-good-good", "GHSA-nest-nest-nest"}, ids(fs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestImport_CorruptArchives(t *testing.T) {
	good := writeRecords(t, npmRecord("GHSA-good-good-good", "2024-01-01T00:00:00Z", "good", ""))
	zipPath := zipDir(t, good)
	whole, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		kind apperr.Kind
		msg  string
	}{
		{"truncated", write("truncated.zip", whole[:len(whole)/2]), apperr.Invalid, "not a valid zip archive"},
		{"garbage", write("garbage.zip", []byte("PK\x03\x04 this is not a zip archive at all")), apperr.Invalid, "not a valid zip archive"},
		{"empty", write("empty.zip", nil), apperr.Invalid, "not a valid zip archive"},
		{"missing", filepath.Join(tmp, "missing.zip"), apperr.NotFound, "does not exist"},
		{"not osv", write("notes.txt", []byte("hello")), apperr.Invalid, "neither a directory, a zip archive nor a JSON file"},
	}
	db := openDB(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Import(t.Context(), tt.path)
			if err == nil {
				t.Fatal("imported a corrupt archive")
			}
			if apperr.KindOf(err) != tt.kind || !strings.Contains(apperr.Message(err), tt.msg) || !strings.Contains(apperr.Message(err), tt.path) {
				t.Errorf("error %q (%v); want %v naming the file and saying %q", apperr.Message(err), apperr.KindOf(err), tt.kind, tt.msg)
			}
		})
	}
	st, err := db.Status(t.Context())
	if err != nil || st.Advisories != 0 {
		t.Errorf("after corrupt imports: %+v, %v; want an empty database", st, err)
	}
}

func TestImport_ZipWithBadEntries(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name, body string, method uint16) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("GHSA-good-good-good.json", npmRecord("GHSA-good-good-good", "2024-01-01T00:00:00Z", "good", ""), zip.Deflate)
	add("broken.json", `{"id":`, zip.Deflate)
	add("crc.json", npmRecord("GHSA-crcc-crcc-crcc", "2024-01-01T00:00:00Z", "stored", ""), zip.Store)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Flip one byte of the stored (uncompressed) entry: its CRC no longer
	// matches.
	i := bytes.Index(b, []byte(`"stored"`))
	b[i+1] = 'X'
	p := filepath.Join(t.TempDir(), "all.zip")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	res, err := db.Import(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || len(res.Notes) != 2 || res.Notes[0].Path != "broken.json" || res.Notes[1].Path != "crc.json" {
		t.Errorf("import: %+v; want 1 added and notes for broken.json and crc.json", res)
	}
	if len(res.Notes) == 2 && !strings.Contains(res.Notes[1].Message, "checksum") {
		t.Errorf("crc note %q does not say the checksum is wrong", res.Notes[1].Message)
	}
}

func TestImport_NewerModifiedWins(t *testing.T) {
	db := openDB(t)
	imp := func(rec string) *advisory.ImportResult {
		t.Helper()
		res, err := db.Import(t.Context(), writeRecords(t, rec))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	summary := func() string {
		t.Helper()
		fs, err := db.Match(t.Context(), lodash)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 {
			return fmt.Sprintf("%d findings", len(fs))
		}
		return fs[0].Title
	}
	id := "GHSA-jf85-cpcp-j695"
	steps := []struct {
		rec         string
		wantCounts  [3]int // added, updated, unchanged
		wantSummary string
	}{
		{npmRecord(id, "2024-01-01T00:00:00Z", "first", ""), [3]int{1, 0, 0}, "first"},
		{npmRecord(id, "2024-02-01T00:00:00Z", "newer", ""), [3]int{0, 1, 0}, "newer"},
		{npmRecord(id, "2024-01-01T00:00:00Z", "first", ""), [3]int{0, 0, 1}, "newer"},         // older: ignored
		{npmRecord(id, "2024-02-01T00:00:00Z", "newer", ""), [3]int{0, 0, 1}, "newer"},         // same: nothing
		{npmRecord(id, "2024-02-01T00:00:00Z", "corrected", ""), [3]int{0, 1, 0}, "corrected"}, // same time, new content
		{npmRecord(id, "2024-03-01T00:00:00Z", "gone", `,"withdrawn":"2024-03-01T00:00:00Z"`), [3]int{0, 1, 0}, "0 findings"},
	}
	for i, s := range steps {
		res := imp(s.rec)
		if got := [3]int{res.Added, res.Updated, res.Unchanged}; got != s.wantCounts {
			t.Errorf("step %d: added/updated/unchanged = %v; want %v", i, got, s.wantCounts)
		}
		if got := summary(); got != s.wantSummary {
			t.Errorf("step %d: match says %q; want %q", i, got, s.wantSummary)
		}
	}
}

// zipOf builds an OSV all.zip holding records.
func zipOf(t *testing.T, records ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(zipDir(t, writeRecords(t, records...)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUpdate_DownloadsPerEcosystemArchives(t *testing.T) {
	// A Go archive built from real advisories of the Go vulnerability
	// database, an npm one, a corrupt PyPI one; no Maven at all.
	vdir := vulndbOSV(t)
	var goRecords []string
	for _, id := range []string{"GO-2022-1059", "GO-2020-0015", "GO-2021-0113"} {
		b, err := os.ReadFile(filepath.Join(vdir, id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		goRecords = append(goRecords, string(b))
	}
	archives := map[string][]byte{
		"/osv/Go/all.zip":   zipOf(t, goRecords...),
		"/osv/npm/all.zip":  zipOf(t, npmRecord("GHSA-jf85-cpcp-j695", "2024-01-01T00:00:00Z", "npm", "")),
		"/osv/PyPI/all.zip": []byte("PK\x03\x04 corrupt"),
		"/osv/Red%20Hat/all.zip": zipOf(t, `{"id":"RHSA-2024:0001","modified":"2024-01-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"Red Hat:enterprise_linux:9::baseos","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:3.0.7-16.el9"}]}]}]}`),
	}
	var requested []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requested = append(requested, r.URL.EscapedPath())
		b, ok := archives[r.URL.EscapedPath()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()

	db := openDB(t)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	res, err := db.Update(t.Context(), srv.URL+"/osv/", []string{"Go", "npm", "PyPI", "Maven", "Red Hat"})
	if err == nil {
		t.Fatal("update succeeded although PyPI is corrupt and Maven missing")
	}
	msg := apperr.Message(err)
	if !strings.Contains(msg, "PyPI") || !strings.Contains(msg, "not a valid zip") || !strings.Contains(msg, "Maven") || !strings.Contains(msg, "404") {
		t.Errorf("error %q does not name the corrupt PyPI and missing Maven archives", msg)
	}
	if strings.Contains(msg, "npm:") || strings.Contains(msg, "Go:") {
		t.Errorf("error %q names an ecosystem that worked", msg)
	}
	want := []string{"/osv/Go/all.zip", "/osv/npm/all.zip", "/osv/PyPI/all.zip", "/osv/Maven/all.zip", "/osv/Red%20Hat/all.zip"}
	if diff := cmp.Diff(want, requested); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if res == nil || res.Added != 5 || diff(res.Ecosystems, []string{"Go", "Red Hat", "npm"}) != "" {
		t.Errorf("result %+v; want 5 added in Go, Red Hat and npm", res)
	}
	st, err := db.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastUpdate.Equal(now) || !st.LastImport.Equal(now) {
		t.Errorf("last update %v, last import %v; want %v", st.LastUpdate, st.LastImport, now)
	}
	got := map[string]advisory.EcosystemStatus{}
	for _, e := range st.Ecosystems {
		got[e.Name] = e
	}
	if g := got["Go"]; g.Advisories != 3 || g.Source != srv.URL+"/osv/Go/all.zip" || !g.UpdatedAt.Equal(now) {
		t.Errorf("Go status %+v", g)
	}
	fs, err := db.Match(t.Context(), []report.Package{
		goPkg("golang.org/x/text", "0.3.6"),
		{Name: "openssl", Version: "3.0.7-6.el9", Ecosystem: "Red Hat", PURL: "pkg:rpm/redhat/openssl@3.0.7-6.el9?epoch=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GO-2021-0113", "GO-2022-1059", "RHSA-2024:0001"}, ids(fs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// The same archives again: nothing changes.
	res, _ = db.Update(t.Context(), srv.URL+"/osv", []string{"Go"})
	if res.Unchanged != 3 || res.Added+res.Updated != 0 {
		t.Errorf("second update: %+v", res)
	}
}

func TestUpdate_RefusesBadSource(t *testing.T) {
	db := openDB(t)
	for _, src := range []string{"ftp://example.com", "not a url", "file:///etc"} {
		_, err := db.Update(t.Context(), src, []string{"Go"})
		if apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("Update(%q): %v; want an invalid-source error", src, err)
		}
	}
	_, err := db.Update(t.Context(), "http://127.0.0.1:1", []string{"../x"})
	if err == nil || !strings.Contains(apperr.Message(err), "not an ecosystem name") {
		t.Errorf("Update with ecosystem ../x: %v", err)
	}
}

func diff(a, b []string) string { return cmp.Diff(a, b) }

func TestImport_SingleFile(t *testing.T) {
	dir := writeRecords(t, npmRecord("GHSA-jf85-cpcp-j695", "2024-01-01T00:00:00Z", "one file", ""))
	db := openDB(t)
	res, err := db.Import(t.Context(), filepath.Join(dir, "GHSA-jf85-cpcp-j695.json"))
	if err != nil || res.Added != 1 || res.Files != 1 {
		t.Fatalf("import one file: %+v, %v", res, err)
	}
	fs, err := db.Match(t.Context(), lodash)
	if err != nil || len(fs) != 1 || fs[0].Title != "one file" || fs[0].Vuln.FixedVersion != "4.17.21" {
		t.Errorf("match after importing one file: %+v, %v", fs, err)
	}
}
