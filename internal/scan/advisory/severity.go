package advisory

import (
	"encoding/json"
	"math"
	"strings"

	cvss20 "github.com/pandatix/go-cvss/20"
	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// severity is how bad an advisory is for one package.
type severity struct {
	Level  report.Severity
	Vector string  // the CVSS vector the level came from, if any
	Score  float64 // its base score
}

// severityOf rates an advisory (or one affected package of it). CVSS
// vectors come first, the newest CVSS version winning (v4, then v3.1, v3.0,
// v2), because a vector is the most precise statement an advisory makes;
// the base score is computed from the vector (the score field of OSV holds
// the vector, not a number). Without a usable vector the textual ratings
// are read: "severity" in database_specific (GitHub's advisories: LOW,
// MODERATE, HIGH, CRITICAL) or ecosystem_specific, an OSV "Ubuntu"
// severity entry, and Debian's "urgency".
func severityOf(sevs []osvSeverity, databaseSpecific, ecosystemSpecific json.RawMessage) severity {
	best, bestRank := severity{}, 0
	for _, s := range sevs {
		vec := strings.TrimSpace(s.Score)
		var score float64
		rank := 0
		switch {
		case s.Type == "CVSS_V4" || strings.HasPrefix(vec, "CVSS:4.0/"):
			v, err := cvss40.ParseVector(vec)
			if err != nil {
				continue
			}
			score, rank = v.Score(), 4
		case strings.HasPrefix(vec, "CVSS:3.1/"):
			v, err := cvss31.ParseVector(vec)
			if err != nil {
				continue
			}
			score, rank = v.BaseScore(), 3
		case strings.HasPrefix(vec, "CVSS:3.0/"):
			v, err := cvss30.ParseVector(vec)
			if err != nil {
				continue
			}
			score, rank = v.BaseScore(), 2
		case s.Type == "CVSS_V2":
			v, err := cvss20.ParseVector(vec)
			if err != nil {
				continue
			}
			score, rank = v.BaseScore(), 1
		default:
			continue
		}
		if math.IsNaN(score) || score < 0 || score > 10 {
			continue
		}
		if rank > bestRank {
			level := levelOfScore(score)
			if rank == 1 && level == report.SeverityCritical {
				level = report.SeverityHigh // CVSS v2 has no critical band
			}
			best, bestRank = severity{Level: level, Vector: vec, Score: score}, rank
		}
	}
	if bestRank > 0 {
		return best
	}
	for _, s := range sevs {
		if s.Type == "Ubuntu" {
			if l := levelOfText(s.Score); l != report.SeverityUnknown {
				return severity{Level: l}
			}
		}
	}
	for _, raw := range []json.RawMessage{databaseSpecific, ecosystemSpecific} {
		if l := textRating(raw); l != report.SeverityUnknown {
			return severity{Level: l}
		}
	}
	return severity{}
}

// levelOfScore maps a CVSS base score to the qualitative rating of CVSS
// v3 and v4: 0 none (info), 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high,
// 9.0–10 critical.
func levelOfScore(score float64) report.Severity {
	switch {
	case score >= 9:
		return report.SeverityCritical
	case score >= 7:
		return report.SeverityHigh
	case score >= 4:
		return report.SeverityMedium
	case score > 0:
		return report.SeverityLow
	}
	return report.SeverityInfo
}

// levelOfText reads the textual ratings advisory databases use.
func levelOfText(s string) report.Severity {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return report.SeverityCritical
	case "high", "important":
		return report.SeverityHigh
	case "medium", "moderate":
		return report.SeverityMedium
	case "low", "negligible", "unimportant":
		return report.SeverityLow
	}
	return report.SeverityUnknown
}

// textRating reads "severity" (or Debian's "urgency") from a
// database_specific or ecosystem_specific object.
func textRating(raw json.RawMessage) report.Severity {
	if len(raw) == 0 {
		return report.SeverityUnknown
	}
	var m struct {
		Severity json.RawMessage `json:"severity"`
		Urgency  json.RawMessage `json:"urgency"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return report.SeverityUnknown
	}
	for _, f := range []json.RawMessage{m.Severity, m.Urgency} {
		var s string
		if len(f) > 0 && json.Unmarshal(f, &s) == nil {
			if l := levelOfText(s); l != report.SeverityUnknown {
				return l
			}
		}
	}
	return report.SeverityUnknown
}
