package cli_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/cli"
)

// runCLI runs rampart with args and an environment, without a server.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(t.Context(), cli.Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errb,
	})
	return code, out.String(), errb.String()
}

const (
	cliAdvisoryGood = `{"id":"GHSA-jf85-cpcp-j695","modified":"2024-01-01T00:00:00Z","summary":"Prototype pollution",
		"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.12"}]}]}]}`
	cliAdvisoryGo = `{"id":"GO-2022-1059","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z",
		"affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/text"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.8"}]}]}]}`
)

func TestDB_ImportAndStatus(t *testing.T) {
	dir := t.TempDir()
	osv := filepath.Join(dir, "osv")
	os.MkdirAll(osv, 0o755)
	os.WriteFile(filepath.Join(osv, "GHSA-jf85-cpcp-j695.json"), []byte(cliAdvisoryGood), 0o644)
	os.WriteFile(filepath.Join(osv, "GO-2022-1059.json"), []byte(cliAdvisoryGo), 0o644)
	os.WriteFile(filepath.Join(osv, "broken.json"), []byte(`{"id":`), 0o644)
	dbPath := filepath.Join(dir, "adv.db")
	env := map[string]string{"RAMPART_ADVISORY_DB": dbPath}

	code, out, errOut := runCLI(t, env, "db", "import", osv)
	if code != cli.ExitOK {
		t.Fatalf("db import: exit %d, stderr %s", code, errOut)
	}
	if !strings.Contains(out, "read 3 files: 2 added, 0 updated, 0 unchanged, 1 skipped") {
		t.Errorf("db import printed %q", out)
	}
	if !strings.Contains(errOut, "skipped broken.json") {
		t.Errorf("db import did not name the broken file: %q", errOut)
	}

	// --db wins over the environment; here both name the same file.
	code, out, errOut = runCLI(t, map[string]string{}, "db", "status", "--db", dbPath, "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("db status: exit %d, stderr %s", code, errOut)
	}
	var st struct {
		Path       string `json:"path"`
		Advisories int    `json:"advisories"`
		Withdrawn  int    `json:"withdrawn"`
		AgeSeconds *int64 `json:"age_seconds"`
		Ecosystems []struct {
			Name       string `json:"name"`
			Advisories int    `json:"advisories"`
			Source     string `json:"source"`
		} `json:"ecosystems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("db status --output json: %v\n%s", err, out)
	}
	if st.Path != dbPath || st.Advisories != 2 || st.Withdrawn != 1 || len(st.Ecosystems) != 2 ||
		st.Ecosystems[0].Name != "Go" || st.Ecosystems[1].Name != "npm" || st.Ecosystems[1].Source != osv {
		t.Errorf("db status: %+v", st)
	}

	code, out, _ = runCLI(t, env, "db", "status")
	if code != cli.ExitOK || !strings.Contains(out, "advisories:       2 (1 withdrawn)") || !strings.Contains(out, "ago)") {
		t.Errorf("db status table: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "ECOSYSTEM") || !strings.Contains(out, "npm") {
		t.Errorf("db status table has no ecosystem rows:\n%s", out)
	}
}

func TestDB_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "all.zip")
	os.WriteFile(bad, []byte("PK\x03\x04 not really"), 0o644)
	env := map[string]string{"RAMPART_ADVISORY_DB": filepath.Join(dir, "adv.db")}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"db", "import", bad}, cli.ExitUsage, "is not a valid zip archive"},
		{[]string{"db", "import", filepath.Join(dir, "missing")}, cli.ExitNotFound, "does not exist"},
		{[]string{"db", "import"}, cli.ExitUsage, "accepts 1 arg"},
		{[]string{"db", "update", "--source", "ftp://example.com"}, cli.ExitUsage, "is not an http(s) URL"},
		{[]string{"db", "status", "--db", dir}, cli.ExitUsage, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runCLI(t, env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut, tt.code, tt.msg)
			}
		})
	}
}

func TestDB_Update(t *testing.T) {
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("GHSA-jf85-cpcp-j695.json")
	w.Write([]byte(cliAdvisoryGood))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/npm/all.zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(zipped.Bytes())
	}))
	defer srv.Close()
	env := map[string]string{"RAMPART_ADVISORY_DB": filepath.Join(t.TempDir(), "adv.db")}

	code, out, errOut := runCLI(t, env, "db", "update", "--source", srv.URL, "--ecosystem", "npm", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("db update: exit %d, stderr %s", code, errOut)
	}
	var res struct{ Added int }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Added != 1 {
		t.Errorf("db update printed %q (%v)", out, err)
	}
	// A missing archive fails the command but keeps what did arrive.
	code, out, errOut = runCLI(t, env, "db", "update", "--source", srv.URL, "--ecosystem", "npm", "--ecosystem", "PyPI")
	if code != cli.ExitUnavailable || !strings.Contains(errOut, "PyPI") || !strings.Contains(out, "1 unchanged") {
		t.Errorf("db update with a missing archive: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
