// Package report holds the types every scanner of package scan produces:
// findings, their severity and location, package inventories, notes and
// the report that collects them. It is a leaf package so that the
// scanners (secrets, deps, iac, …) and package scan, which runs them, can
// share these types without import cycles; package scan re-exports them.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Severity orders findings; --fail-on compares against it.
type Severity int

// Severities, lowest first.
const (
	SeverityUnknown Severity = iota
	SeverityInfo
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"unknown", "info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity reads a severity name (case-insensitive).
func ParseSeverity(name string) (Severity, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for i, s := range severityNames {
		if s == n {
			return Severity(i), nil
		}
	}
	if n == "moderate" {
		return SeverityMedium, nil
	}
	return SeverityUnknown, fmt.Errorf("unknown severity %q (want info, low, medium, high or critical)", name)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Kind is the class of a finding.
type Kind string

// Kinds of finding.
const (
	KindSecret           Kind = "secret"
	KindVulnerability    Kind = "vulnerability"
	KindMisconfiguration Kind = "misconfiguration"
)

// Location says where a finding is.
type Location struct {
	// Path is slash-separated and relative to the target's root.
	Path      string `json:"path"`
	StartLine int    `json:"start_line,omitempty"`
	EndLine   int    `json:"end_line,omitempty"`
	StartCol  int    `json:"start_column,omitempty"`
	EndCol    int    `json:"end_column,omitempty"`
	// Commit, Author, AuthorEmail and Date name the commit that introduced
	// the content, in git history scans.
	Commit      string    `json:"commit,omitempty"`
	Author      string    `json:"author,omitempty"`
	AuthorEmail string    `json:"author_email,omitempty"`
	Date        time.Time `json:"date,omitzero"`
	// Layer is the digest of the image layer holding the file, in image
	// scans.
	Layer string `json:"layer,omitempty"`
}

// Package is one entry of an inventory.
type Package struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Ecosystem string `json:"ecosystem"` // OSV ecosystem name: Go, npm, PyPI, Maven, crates.io, …
	PURL      string `json:"purl,omitempty"`
	// Locations are the manifests or lockfiles the package was found in.
	Locations []string          `json:"locations,omitempty"`
	Licenses  []string          `json:"licenses,omitempty"`
	Hashes    map[string]string `json:"hashes,omitempty"` // algorithm (SHA-256, …) → hex
	// Direct is set when a manifest names the package itself.
	Direct bool `json:"direct,omitempty"`
}

// Secret is what a secret finding shows of the secret: never all of it.
type Secret struct {
	// Redacted keeps a few leading characters, e.g. "AKIA…".
	Redacted string  `json:"redacted"`
	Entropy  float64 `json:"entropy,omitempty"`
}

// Vulnerability is what a dependency finding knows of its advisory.
type Vulnerability struct {
	Package Package `json:"package"`
	// ID is the advisory's preferred id; Aliases the others merged into it
	// (CVE, GHSA, GO-…).
	ID           string   `json:"id"`
	Aliases      []string `json:"aliases,omitempty"`
	Summary      string   `json:"summary,omitempty"`
	FixedVersion string   `json:"fixed_version,omitempty"`
	CVSSVector   string   `json:"cvss_vector,omitempty"`
	CVSSScore    float64  `json:"cvss_score,omitempty"`
	References   []string `json:"references,omitempty"`
}

// Finding is one problem found by a scanner.
type Finding struct {
	Kind     Kind     `json:"kind"`
	RuleID   string   `json:"rule_id"` // secret rule, advisory id or IaC check id
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Location Location `json:"location"`
	// Fingerprint identifies the finding across scans (for suppressions,
	// alerts and "new in this pull request"); it never contains a secret.
	Fingerprint string         `json:"fingerprint"`
	Description string         `json:"description,omitempty"`
	Remediation string         `json:"remediation,omitempty"`
	Secret      *Secret        `json:"secret,omitempty"`
	Vuln        *Vulnerability `json:"vulnerability,omitempty"`
	// Suppressed is set when a suppression matched.
	Suppressed *Suppressed `json:"suppressed,omitempty"`
}

// Suppressed records why a finding does not count.
type Suppressed struct {
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires,omitzero"`
}

// Fingerprint hashes parts into a stable, non-secret identifier.
func Fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Note is something the scan could not do, reported instead of failing.
type Note struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Stats counts what a scan covered.
type Stats struct {
	Files   int64 `json:"files"`
	Bytes   int64 `json:"bytes"`
	Blobs   int64 `json:"blobs,omitempty"`
	Commits int64 `json:"commits,omitempty"`
	Skipped int64 `json:"skipped,omitempty"`
}

// Report is the result of scanning one target.
type Report struct {
	Target     string    `json:"target"`
	TargetKind string    `json:"target_kind"` // dir, git, image
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Findings   []Finding `json:"findings"`
	Packages   []Package `json:"packages,omitempty"`
	Notes      []Note    `json:"notes,omitempty"`
	Stats      Stats     `json:"stats"`
}

// Worst returns the highest severity among unsuppressed findings.
func (r *Report) Worst() Severity {
	worst := SeverityUnknown
	for _, f := range r.Findings {
		if f.Suppressed == nil && f.Severity > worst {
			worst = f.Severity
		}
	}
	return worst
}

// CountAtLeast counts unsuppressed findings at or above s.
func (r *Report) CountAtLeast(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Suppressed == nil && f.Severity >= s {
			n++
		}
	}
	return n
}
