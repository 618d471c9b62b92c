// Package sbom writes a scan's package inventory as a software bill of
// materials: CycloneDX 1.6 JSON (with github.com/CycloneDX/cyclonedx-go) and
// SPDX 2.3 JSON (with github.com/spdx/tools-golang). Every package carries
// its purl, the licenses and hashes known for it and the files it was found
// in; CycloneDX also lists the vulnerabilities found, with their ratings.
//
// Output is deterministic for a given report and Options (sorted packages,
// identifiers derived from content, the time given in Options), so SBOMs of
// reproducible builds are themselves reproducible.
package sbom

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// Options describe the document around the inventory.
type Options struct {
	// Name of the subject (a repository, a directory, an image reference).
	Name string
	// Version of the subject, when known (a commit, an image digest).
	Version string
	// Created is the document's creation time (defaults to the report's
	// finish time).
	Created time.Time
	// ToolVersion is Rampart's version.
	ToolVersion string
}

func created(r *report.Report, o Options) time.Time {
	t := o.Created
	if t.IsZero() {
		t = r.FinishedAt
	}
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.UTC().Truncate(time.Second)
}

// sortedPackages returns the inventory sorted by ecosystem, name, version,
// without duplicates (same purl or same ecosystem/name/version).
func sortedPackages(pkgs []report.Package) []report.Package {
	out := slices.Clone(pkgs)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return cmp.Or(cmp.Compare(a.Ecosystem, b.Ecosystem), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version)) < 0
	})
	return slices.CompactFunc(out, func(a, b report.Package) bool {
		return a.Ecosystem == b.Ecosystem && a.Name == b.Name && a.Version == b.Version
	})
}

func pkgKey(p report.Package) string {
	if p.PURL != "" {
		return p.PURL
	}
	return "pkg:" + strings.ToLower(p.Ecosystem) + "/" + p.Name + "@" + p.Version
}

var osEcosystems = []string{"Debian", "Ubuntu", "Alpine", "Red Hat", "Rocky Linux", "AlmaLinux", "openSUSE", "SUSE"}

func isOSPackage(p report.Package) bool {
	for _, e := range osEcosystems {
		if p.Ecosystem == e || strings.HasPrefix(p.Ecosystem, e+":") {
			return true
		}
	}
	return false
}

var cdxHash = map[string]cdx.HashAlgorithm{
	"MD5": cdx.HashAlgoMD5, "SHA-1": cdx.HashAlgoSHA1, "SHA-256": cdx.HashAlgoSHA256,
	"SHA-384": cdx.HashAlgoSHA384, "SHA-512": cdx.HashAlgoSHA512,
}

// normalizeAlg maps hash names like "sha256" to "SHA-256".
func normalizeAlg(a string) string {
	a = strings.ToUpper(strings.ReplaceAll(a, "_", "-"))
	if strings.HasPrefix(a, "SHA") && !strings.HasPrefix(a, "SHA-") {
		a = "SHA-" + strings.TrimPrefix(a, "SHA")
	}
	return a
}

var hashLen = map[string]int{"MD5": 16, "SHA-1": 20, "SHA-256": 32, "SHA-384": 48, "SHA-512": 64}

// hashHex returns a digest as lowercase hex, accepting hex or base64 (npm
// lockfiles record base64 integrity values); digests of the wrong length
// are dropped rather than written into an invalid SBOM.
func hashHex(alg, v string) (string, bool) {
	n, ok := hashLen[alg]
	if !ok {
		return "", false
	}
	v = strings.TrimSpace(v)
	if b, err := hex.DecodeString(v); err == nil && len(b) == n {
		return strings.ToLower(v), true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil && len(b) == n {
			return hex.EncodeToString(b), true
		}
	}
	return "", false
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CycloneDX writes r's inventory and vulnerabilities as CycloneDX 1.6 JSON.
func CycloneDX(w io.Writer, r *report.Report, o Options) error {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	ts := created(r, o)
	bom.SerialNumber = "urn:uuid:" + uuidFrom(r, o, "cyclonedx")
	subject := cdx.Component{BOMRef: "subject", Type: cdx.ComponentTypeApplication, Name: cmp.Or(o.Name, r.Target, "unnamed"), Version: o.Version}
	if r.TargetKind == "image" {
		subject.Type = cdx.ComponentTypeContainer
	}
	tools := []cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "rampart", Version: o.ToolVersion}}
	bom.Metadata = &cdx.Metadata{Timestamp: ts.Format(time.RFC3339), Tools: &cdx.ToolsChoice{Components: &tools}, Component: &subject}
	pkgs := sortedPackages(r.Packages)
	comps := make([]cdx.Component, 0, len(pkgs))
	refs := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		c := cdx.Component{BOMRef: pkgKey(p), Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL}
		if isOSPackage(p) {
			c.Type = cdx.ComponentTypeLibrary
			c.Group = ""
		}
		if len(p.Licenses) > 0 {
			var lc cdx.Licenses
			for _, l := range p.Licenses {
				if spdxID.MatchString(l) {
					lc = append(lc, cdx.LicenseChoice{License: &cdx.License{ID: l}})
				} else {
					lc = append(lc, cdx.LicenseChoice{License: &cdx.License{Name: l}})
				}
			}
			c.Licenses = &lc
		}
		var hashes []cdx.Hash
		for _, alg := range sortedKeys(p.Hashes) {
			a, ok := cdxHash[normalizeAlg(alg)]
			if v, vok := hashHex(normalizeAlg(alg), p.Hashes[alg]); ok && vok {
				hashes = append(hashes, cdx.Hash{Algorithm: a, Value: v})
			}
		}
		if len(hashes) > 0 {
			c.Hashes = &hashes
		}
		props := []cdx.Property{{Name: "rampart:ecosystem", Value: p.Ecosystem}}
		for _, loc := range p.Locations {
			props = append(props, cdx.Property{Name: "rampart:location", Value: loc})
		}
		c.Properties = &props
		comps = append(comps, c)
		refs = append(refs, c.BOMRef)
	}
	bom.Components = &comps
	deps := []cdx.Dependency{{Ref: "subject", Dependencies: &refs}}
	bom.Dependencies = &deps

	var vulns []cdx.Vulnerability
	for _, f := range r.Findings {
		if f.Vuln == nil {
			continue
		}
		v := cdx.Vulnerability{BOMRef: "vuln-" + f.Fingerprint, ID: f.RuleID, Description: f.Title,
			Affects: &[]cdx.Affects{{Ref: pkgKey(f.Vuln.Package)}}}
		if f.Vuln.FixedVersion != "" {
			v.Recommendation = "Upgrade " + f.Vuln.Package.Name + " to " + f.Vuln.FixedVersion + " or later."
		}
		rating := cdx.VulnerabilityRating{Severity: cdxSeverity(f.Severity)}
		if f.Vuln.CVSSScore > 0 {
			score := f.Vuln.CVSSScore
			rating.Score = &score
		}
		if f.Vuln.CVSSVector != "" {
			rating.Vector = f.Vuln.CVSSVector
			switch {
			case strings.HasPrefix(f.Vuln.CVSSVector, "CVSS:3.1"):
				rating.Method = cdx.ScoringMethodCVSSv31
			case strings.HasPrefix(f.Vuln.CVSSVector, "CVSS:3.0"):
				rating.Method = cdx.ScoringMethodCVSSv3
			case strings.HasPrefix(f.Vuln.CVSSVector, "CVSS:4.0"):
				rating.Method = cdx.ScoringMethodCVSSv4
			}
		}
		v.Ratings = &[]cdx.VulnerabilityRating{rating}
		if len(f.Vuln.Aliases) > 0 {
			var refs []cdx.VulnerabilityReference
			for _, a := range f.Vuln.Aliases {
				refs = append(refs, cdx.VulnerabilityReference{ID: a, Source: &cdx.Source{Name: aliasSource(a)}})
			}
			v.References = &refs
		}
		vulns = append(vulns, v)
	}
	if len(vulns) > 0 {
		sort.Slice(vulns, func(i, j int) bool { return vulns[i].BOMRef < vulns[j].BOMRef })
		vulns = slices.CompactFunc(vulns, func(a, b cdx.Vulnerability) bool { return a.BOMRef == b.BOMRef })
		bom.Vulnerabilities = &vulns
	}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

func cdxSeverity(s report.Severity) cdx.Severity {
	switch s {
	case report.SeverityCritical:
		return cdx.SeverityCritical
	case report.SeverityHigh:
		return cdx.SeverityHigh
	case report.SeverityMedium:
		return cdx.SeverityMedium
	case report.SeverityLow:
		return cdx.SeverityLow
	case report.SeverityInfo:
		return cdx.SeverityInfo
	}
	return cdx.SeverityUnknown
}

func aliasSource(id string) string {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return "NVD"
	case strings.HasPrefix(id, "GHSA-"):
		return "GitHub"
	case strings.HasPrefix(id, "GO-"):
		return "Go"
	}
	return "OSV"
}

// spdxID matches a plausible SPDX license identifier.
var spdxID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)

// spdxLicense turns a package's licenses into an SPDX expression, or
// NOASSERTION when they are unknown or not SPDX identifiers.
func spdxLicense(ls []string) string {
	var ids []string
	for _, l := range ls {
		l = strings.TrimSpace(l)
		if !spdxID.MatchString(l) {
			return "NOASSERTION"
		}
		ids = append(ids, l)
	}
	if len(ids) == 0 {
		return "NOASSERTION"
	}
	sort.Strings(ids)
	return strings.Join(slices.Compact(ids), " AND ")
}

var spdxElementChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func spdxChecksum(alg string) (common.ChecksumAlgorithm, bool) {
	switch normalizeAlg(alg) {
	case "SHA-1":
		return common.SHA1, true
	case "SHA-256":
		return common.SHA256, true
	case "SHA-384":
		return common.SHA384, true
	case "SHA-512":
		return common.SHA512, true
	case "MD5":
		return common.MD5, true
	}
	return "", false
}

// SPDX writes r's inventory as an SPDX 2.3 JSON document.
func SPDX(w io.Writer, r *report.Report, o Options) error {
	name := cmp.Or(o.Name, r.Target, "unnamed")
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://rampart.invalid/spdx/" + spdxElementChars.ReplaceAllString(name, "-") + "-" + uuidFrom(r, o, "spdx"),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "rampart-" + cmp.Or(o.ToolVersion, "devel")}},
			Created:  created(r, o).Format("2006-01-02T15:04:05Z"),
		},
	}
	root := &spdx.Package{
		PackageName: name, PackageSPDXIdentifier: "Subject", PackageVersion: o.Version,
		PackageDownloadLocation: "NOASSERTION", FilesAnalyzed: false, IsFilesAnalyzedTagPresent: true,
		PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: "NOASSERTION", PackageCopyrightText: "NOASSERTION",
		PrimaryPackagePurpose: "APPLICATION",
	}
	if r.TargetKind == "image" {
		root.PrimaryPackagePurpose = "CONTAINER"
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "Subject"), Relationship: "DESCRIBES"})
	seen := map[common.ElementID]int{}
	for _, p := range sortedPackages(r.Packages) {
		id := common.ElementID("Package-" + strings.Trim(spdxElementChars.ReplaceAllString(p.Ecosystem+"-"+p.Name+"-"+p.Version, "-"), "-"))
		if n := seen[id]; n > 0 {
			seen[id] = n + 1
			id = common.ElementID(fmt.Sprintf("%s-%d", id, n+1))
		} else {
			seen[id] = 1
		}
		sp := &spdx.Package{
			PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.Version,
			PackageDownloadLocation: "NOASSERTION", FilesAnalyzed: false, IsFilesAnalyzedTagPresent: true,
			PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: spdxLicense(p.Licenses),
			PackageCopyrightText: "NOASSERTION", PrimaryPackagePurpose: "LIBRARY",
		}
		if p.PURL != "" {
			sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL}}
		}
		for _, alg := range sortedKeys(p.Hashes) {
			a, ok := spdxChecksum(alg)
			if v, vok := hashHex(normalizeAlg(alg), p.Hashes[alg]); ok && vok {
				sp.PackageChecksums = append(sp.PackageChecksums, common.Checksum{Algorithm: a, Value: v})
			}
		}
		if len(p.Locations) > 0 {
			sp.PackageSourceInfo = "found in " + strings.Join(p.Locations, ", ")
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "Subject"), RefB: common.MakeDocElementID("", string(id)), Relationship: "DEPENDS_ON"})
	}
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}

// uuidFrom derives a stable UUID (version 5 layout) from the report's
// content, so the same inventory yields the same document identifiers.
func uuidFrom(r *report.Report, o Options, kind string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", kind, o.Name, o.Version, r.Target, created(r, o).Format(time.RFC3339))
	for _, p := range sortedPackages(r.Packages) {
		fmt.Fprintf(h, "%s\x00", pkgKey(p))
	}
	b := h.Sum(nil)[:16]
	b[6] = (b[6] & 0x0f) | 0x50
	b[8] = (b[8] & 0x3f) | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
