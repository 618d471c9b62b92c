// Package sarif writes scan reports as SARIF 2.1.0 (OASIS Static Analysis
// Results Interchange Format), the format code-scanning dashboards (GitHub,
// GitLab, Azure DevOps, IDEs) import. One run per report; each distinct
// rule becomes a reportingDescriptor with its severity as a
// `security-severity` score; suppressed findings carry a SARIF suppression
// with their reason; notes become tool execution notifications.
//
// The writer is small and ours: SARIF's object model is large, but a
// scanner needs a fixed subset of it, and tests validate every document we
// write against the official JSON schema.
package sarif

import (
	"encoding/json"
	"io"
	"sort"
	"strings"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// Version and Schema identify the SARIF format written.
const (
	Version = "2.1.0"
	Schema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

// Tool describes the producer of the log.
type Tool struct {
	Name           string
	Version        string
	InformationURI string
}

type log struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []run  `json:"runs"`
}

type run struct {
	Tool        tool         `json:"tool"`
	Invocations []invocation `json:"invocations"`
	Results     []result     `json:"results"`
	// OriginalURIBaseIDs maps %SRCROOT% to the scanned target.
	OriginalURIBaseIDs map[string]artifactLocation `json:"originalUriBaseIds,omitempty"`
	Properties         map[string]any              `json:"properties,omitempty"`
}

type tool struct {
	Driver driver `json:"driver"`
}

type driver struct {
	Name           string       `json:"name"`
	Version        string       `json:"version,omitempty"`
	InformationURI string       `json:"informationUri,omitempty"`
	Rules          []descriptor `json:"rules"`
}

type message struct {
	Text string `json:"text"`
}

type descriptor struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     *message       `json:"shortDescription,omitempty"`
	FullDescription      *message       `json:"fullDescription,omitempty"`
	Help                 *message       `json:"help,omitempty"`
	DefaultConfiguration *configuration `json:"defaultConfiguration,omitempty"`
	Properties           map[string]any `json:"properties,omitempty"`
}

type configuration struct {
	Level string `json:"level"`
}

type invocation struct {
	ExecutionSuccessful        bool           `json:"executionSuccessful"`
	StartTimeUTC               string         `json:"startTimeUtc,omitempty"`
	EndTimeUTC                 string         `json:"endTimeUtc,omitempty"`
	ToolExecutionNotifications []notification `json:"toolExecutionNotifications,omitempty"`
}

type notification struct {
	Level     string     `json:"level"`
	Message   message    `json:"message"`
	Locations []location `json:"locations,omitempty"`
}

type result struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             message           `json:"message"`
	Locations           []location        `json:"locations,omitempty"`
	PartialFingerprints map[string]string `json:"partialFingerprints,omitempty"`
	Suppressions        []suppression     `json:"suppressions,omitempty"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type suppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification,omitempty"`
}

type location struct {
	PhysicalLocation physicalLocation `json:"physicalLocation"`
}

type physicalLocation struct {
	ArtifactLocation artifactLocation `json:"artifactLocation"`
	Region           *region          `json:"region,omitempty"`
}

type artifactLocation struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type region struct {
	StartLine   int `json:"startLine,omitempty"`
	StartColumn int `json:"startColumn,omitempty"`
	EndLine     int `json:"endLine,omitempty"`
	EndColumn   int `json:"endColumn,omitempty"`
}

// Level maps a severity to a SARIF result level.
func Level(s report.Severity) string {
	switch {
	case s >= report.SeverityHigh:
		return "error"
	case s == report.SeverityMedium:
		return "warning"
	default:
		return "note"
	}
}

// securitySeverity is the score code-scanning dashboards sort by (the
// CVSS score when a vulnerability has one).
func securitySeverity(f report.Finding) float64 {
	if f.Vuln != nil && f.Vuln.CVSSScore > 0 {
		return f.Vuln.CVSSScore
	}
	switch f.Severity {
	case report.SeverityCritical:
		return 9.5
	case report.SeverityHigh:
		return 8.0
	case report.SeverityMedium:
		return 5.5
	case report.SeverityLow:
		return 2.0
	}
	return 0.0
}

// uri turns a report path into a relative URI reference.
func uri(p string) string {
	p = strings.TrimPrefix(strings.ReplaceAll(p, "\\", "/"), "/")
	var b strings.Builder
	for _, c := range []byte(p) {
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`%#?"<>\^`+"`{|}[]", c) >= 0 {
			b.WriteString("%")
			b.WriteString(strings.ToUpper(hex2(c)))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// Write encodes r as a SARIF log.
func Write(w io.Writer, r *report.Report, t Tool) error {
	ru := run{
		Tool: tool{Driver: driver{Name: t.Name, Version: t.Version, InformationURI: t.InformationURI, Rules: []descriptor{}}},
		Invocations: []invocation{{
			ExecutionSuccessful: true,
			StartTimeUTC:        timeUTC(r.StartedAt),
			EndTimeUTC:          timeUTC(r.FinishedAt),
		}},
		Results: []result{},
		Properties: map[string]any{
			"target": r.Target, "targetKind": r.TargetKind,
		},
	}
	for _, n := range r.Notes {
		no := notification{Level: "warning", Message: message{Text: n.Message}}
		if n.Path != "" {
			no.Locations = []location{{PhysicalLocation: physicalLocation{ArtifactLocation: artifactLocation{URI: uri(n.Path), URIBaseID: "%SRCROOT%"}}}}
		}
		ru.Invocations[0].ToolExecutionNotifications = append(ru.Invocations[0].ToolExecutionNotifications, no)
	}
	index := map[string]int{}
	findings := append([]report.Finding(nil), r.Findings...)
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.Location.Path != b.Location.Path {
			return a.Location.Path < b.Location.Path
		}
		if a.Location.StartLine != b.Location.StartLine {
			return a.Location.StartLine < b.Location.StartLine
		}
		return a.RuleID < b.RuleID
	})
	for _, f := range findings {
		i, ok := index[f.RuleID]
		if !ok {
			i = len(ru.Tool.Driver.Rules)
			index[f.RuleID] = i
			d := descriptor{
				ID:                   f.RuleID,
				Name:                 ruleName(f),
				ShortDescription:     &message{Text: nonEmpty(f.Title, f.RuleID)},
				DefaultConfiguration: &configuration{Level: Level(f.Severity)},
				Properties: map[string]any{
					"tags":              []string{"security", string(f.Kind)},
					"security-severity": formatScore(securitySeverity(f)),
					"severity":          f.Severity.String(),
				},
			}
			if f.Description != "" && f.Kind != report.KindMisconfiguration {
				d.FullDescription = &message{Text: f.Description}
			}
			if f.Remediation != "" {
				d.Help = &message{Text: f.Remediation}
			}
			ru.Tool.Driver.Rules = append(ru.Tool.Driver.Rules, d)
		}
		res := result{
			RuleID:              f.RuleID,
			RuleIndex:           i,
			Level:               Level(f.Severity),
			Message:             message{Text: resultMessage(f)},
			PartialFingerprints: map[string]string{"rampart/v1": f.Fingerprint},
			Properties:          map[string]any{"severity": f.Severity.String(), "kind": string(f.Kind)},
		}
		if f.Location.Path != "" {
			loc := location{PhysicalLocation: physicalLocation{ArtifactLocation: artifactLocation{URI: uri(f.Location.Path), URIBaseID: "%SRCROOT%"}}}
			if f.Location.StartLine > 0 {
				loc.PhysicalLocation.Region = &region{StartLine: f.Location.StartLine, StartColumn: f.Location.StartCol,
					EndLine: f.Location.EndLine, EndColumn: f.Location.EndCol}
				if loc.PhysicalLocation.Region.EndLine < loc.PhysicalLocation.Region.StartLine {
					loc.PhysicalLocation.Region.EndLine = 0
				}
			}
			res.Locations = []location{loc}
		}
		if f.Location.Commit != "" {
			res.Properties["commit"] = f.Location.Commit
			res.Properties["author"] = f.Location.Author
		}
		if f.Location.Layer != "" {
			res.Properties["layer"] = f.Location.Layer
		}
		if f.Vuln != nil {
			res.Properties["package"] = f.Vuln.Package.Name + "@" + f.Vuln.Package.Version
			if f.Vuln.FixedVersion != "" {
				res.Properties["fixedVersion"] = f.Vuln.FixedVersion
			}
			if len(f.Vuln.Aliases) > 0 {
				res.Properties["aliases"] = f.Vuln.Aliases
			}
		}
		if f.Suppressed != nil {
			res.Suppressions = []suppression{{Kind: "external", Justification: f.Suppressed.Reason}}
		}
		ru.Results = append(ru.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log{Schema: Schema, Version: Version, Runs: []run{ru}})
}

func ruleName(f report.Finding) string {
	var b strings.Builder
	up := true
	for _, r := range nonEmpty(f.Title, f.RuleID) {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			if up && r >= 'a' && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}

func resultMessage(f report.Finding) string {
	switch {
	case f.Kind == report.KindSecret && f.Secret != nil:
		return nonEmpty(f.Title, f.RuleID) + ": " + f.Secret.Redacted
	case f.Vuln != nil:
		msg := f.Vuln.Package.Name + " " + f.Vuln.Package.Version + " is affected by " + f.RuleID
		if f.Title != "" {
			msg += ": " + f.Title
		}
		if f.Vuln.FixedVersion != "" {
			msg += " (fixed in " + f.Vuln.FixedVersion + ")"
		}
		return msg
	case f.Description != "":
		return f.Description
	}
	return nonEmpty(f.Title, f.RuleID)
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func formatScore(f float64) string {
	b, _ := json.Marshal(f)
	s := string(b)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
