package sbom_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/sbom"
	"github.com/rampartsec/rampart/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func inventory() *report.Report {
	return &report.Report{
		Target: "/src/app", TargetKind: "dir",
		FinishedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Packages: []report.Package{
			{Name: "golang.org/x/net", Version: "v0.22.0", Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/net@v0.22.0",
				Locations: []string{"go.mod"}, Licenses: []string{"BSD-3-Clause"}, Direct: true},
			{Name: "left-pad", Version: "1.3.0", Ecosystem: "npm", PURL: "pkg:npm/left-pad@1.3.0", Locations: []string{"web/package-lock.json"},
				Licenses: []string{"WTFPL"}, Hashes: map[string]string{
					"sha512": "wRJyELBMRAX5l6aC0MCDYfgN4TCFN9ItfXYeKqsRQCXmr1SoA/5Q/O1Pe9bmXwxh/kPnYjqS7oagwn9Hl3j5Hw==", // npm integrity, base64
					"sha1":   "F2A4F3D7A2F4E5C1B0A99E0D5B6C7A8B9C0D1E2F",
					"md5":    "not-a-digest"}},
			{Name: "openssl", Version: "3.0.11-1~deb12u2", Ecosystem: "Debian:12", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12",
				Locations: []string{"var/lib/dpkg/status"}, Licenses: []string{"custom license text"}},
			// a duplicate of the first, found in a second manifest
			{Name: "golang.org/x/net", Version: "v0.22.0", Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/net@v0.22.0", Locations: []string{"tools/go.mod"}},
		},
		Findings: []report.Finding{{Kind: report.KindVulnerability, RuleID: "GO-2024-2687", Title: "HTTP/2 CONTINUATION flood",
			Severity: report.SeverityHigh, Fingerprint: "abc",
			Vuln: &report.Vulnerability{ID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288"}, FixedVersion: "v0.23.0", CVSSScore: 7.5,
				CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
				Package:    report.Package{Name: "golang.org/x/net", Version: "v0.22.0", Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/net@v0.22.0"}}}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended):\n%s", p, got)
	}
}

func TestCycloneDX(t *testing.T) {
	var buf bytes.Buffer
	if err := sbom.CycloneDX(&buf, inventory(), sbom.Options{Name: "app", Version: "1a2b3c", ToolVersion: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "app.cdx.json", buf.Bytes())
	if err := cycloneDXSchemaCheck(t, buf.Bytes()); err != nil {
		t.Fatalf("CycloneDX 1.6 schema: %v", err)
	}
	var doc struct {
		SpecVersion string `json:"specVersion"`
		Components  []struct {
			PURL string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SpecVersion != "1.6" || len(doc.Components) != 3 {
		t.Fatalf("spec %s with %d components, want 1.6 with 3 (duplicates merged)", doc.SpecVersion, len(doc.Components))
	}
	// Same input, same bytes: SBOMs of reproducible builds reproduce.
	var again bytes.Buffer
	_ = sbom.CycloneDX(&again, inventory(), sbom.Options{Name: "app", Version: "1a2b3c", ToolVersion: "1.0.0"})
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("CycloneDX output is not deterministic")
	}
}

func TestCycloneDXSchemaCheckRejectsInvalid(t *testing.T) {
	var buf bytes.Buffer
	if err := sbom.CycloneDX(&buf, inventory(), sbom.Options{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(buf.Bytes(), []byte(`"type": "library"`), []byte(`"type": "librarian"`), 1)
	if cycloneDXSchemaCheck(t, bad) == nil {
		t.Fatal("the schema check accepted an unknown component type")
	}
}

func TestSPDX(t *testing.T) {
	var buf bytes.Buffer
	if err := sbom.SPDX(&buf, inventory(), sbom.Options{Name: "app", Version: "1a2b3c", ToolVersion: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "app.spdx.json", buf.Bytes())
	doc, err := spdxjson.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("tools-golang cannot read our SPDX: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("invalid SPDX document: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 4 {
		t.Fatalf("version %s with %d packages, want SPDX-2.3 with 4 (subject + 3)", doc.SPDXVersion, len(doc.Packages))
	}
	var purls, licenses []string
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			purls = append(purls, r.Locator)
		}
		licenses = append(licenses, p.PackageLicenseDeclared)
	}
	if !strings.Contains(strings.Join(purls, " "), "pkg:npm/left-pad@1.3.0") {
		t.Errorf("purls = %v", purls)
	}
	if !strings.Contains(strings.Join(licenses, " "), "BSD-3-Clause") || !strings.Contains(strings.Join(licenses, " "), "NOASSERTION") {
		t.Errorf("licenses = %v (want SPDX ids kept and free text as NOASSERTION)", licenses)
	}
}

// cycloneDXSchemaCheck validates doc against the CycloneDX 1.6 JSON schema
// shipped in the cyclonedx-go module.
func cycloneDXSchemaCheck(t *testing.T, doc []byte) error {
	t.Helper()
	dir := filepath.Join(testenv.GoModule(t, "github.com/CycloneDX/cyclonedx-go", "v0.12.0"), "schema")
	c := jsonschema.NewCompiler()
	for id, f := range map[string]string{
		"bom-1.6.schema.json": "bom-1.6.schema.json", "spdx.schema.json": "spdx.schema.json",
		"jsf-0.82.schema.json": "jsf-0.82.schemax.json", // the module's file name for it
	} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sch, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource("http://cyclonedx.org/schema/"+id, sch); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	return sch.Validate(v)
}
