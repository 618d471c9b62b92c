package scan

import "github.com/rampartsec/rampart/internal/scan/report"

// The types every scanner produces (see package report).
type (
	Severity      = report.Severity
	Kind          = report.Kind
	Location      = report.Location
	Package       = report.Package
	Secret        = report.Secret
	Vulnerability = report.Vulnerability
	Finding       = report.Finding
	Suppressed    = report.Suppressed
	Note          = report.Note
	Stats         = report.Stats
	Report        = report.Report
)

// Severities and kinds.
const (
	SeverityUnknown  = report.SeverityUnknown
	SeverityInfo     = report.SeverityInfo
	SeverityLow      = report.SeverityLow
	SeverityMedium   = report.SeverityMedium
	SeverityHigh     = report.SeverityHigh
	SeverityCritical = report.SeverityCritical

	KindSecret           = report.KindSecret
	KindVulnerability    = report.KindVulnerability
	KindMisconfiguration = report.KindMisconfiguration
)

// ParseSeverity reads a severity name.
func ParseSeverity(name string) (Severity, error) { return report.ParseSeverity(name) }
