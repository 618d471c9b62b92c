package waf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Mode says what the WAF does with a request the rules flag.
type Mode string

// Modes.
const (
	// Off skips the WAF entirely.
	Off Mode = "off"
	// Detect evaluates every rule and logs matches but never blocks.
	Detect Mode = "detect"
	// Block evaluates every rule and blocks requests whose anomaly score
	// reaches the threshold.
	Block Mode = "block"
)

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case Off, Detect, Block:
		return m, nil
	}
	return "", apperr.InvalidField("waf.mode", "unknown WAF mode %q (want off, detect or block)", s)
}

// Limits of Settings.
const (
	MaxExclusions = 200
	maxThreshold  = 10000
)

// Settings are a route's WAF settings. The zero value is Off; Normalize
// fills the defaults of the other fields.
type Settings struct {
	Mode Mode `json:"mode" yaml:"mode"`
	// Paranoia is the CRS blocking paranoia level, 1 (few false positives)
	// to 4 (most rules).
	Paranoia int `json:"paranoia,omitempty" yaml:"paranoia,omitempty"`
	// InboundThreshold is the inbound anomaly score at which a request is
	// blocked (CRS default 5: one critical match).
	InboundThreshold int `json:"inbound_threshold,omitempty" yaml:"inbound_threshold,omitempty"`
	// OutboundThreshold is the outbound (response) anomaly score at which
	// a response is blocked (CRS default 4).
	OutboundThreshold int `json:"outbound_threshold,omitempty" yaml:"outbound_threshold,omitempty"`
	// ExcludeRules lists CRS rule ids (or ranges "A-B") removed for this
	// route: the usual way to silence a false positive.
	ExcludeRules []string `json:"exclude_rules,omitempty" yaml:"exclude_rules,omitempty"`
	// InspectResponses buffers response bodies of text types and runs the
	// CRS response rules (data leakage) on them. It delays the first byte
	// of such responses until the whole body is in.
	InspectResponses bool `json:"inspect_responses,omitempty" yaml:"inspect_responses,omitempty"`
}

// Normalize validates s and fills defaults, returning the canonical form.
func (s Settings) Normalize() (Settings, error) {
	if s.Mode == "" {
		s.Mode = Off
	}
	m, err := ParseMode(string(s.Mode))
	if err != nil {
		return s, err
	}
	s.Mode = m
	if s.Paranoia == 0 {
		s.Paranoia = 1
	}
	if s.Paranoia < 1 || s.Paranoia > 4 {
		return s, apperr.InvalidField("waf.paranoia", "paranoia level must be 1 to 4")
	}
	if s.InboundThreshold == 0 {
		s.InboundThreshold = 5
	}
	if s.OutboundThreshold == 0 {
		s.OutboundThreshold = 4
	}
	if s.InboundThreshold < 1 || s.InboundThreshold > maxThreshold || s.OutboundThreshold < 1 || s.OutboundThreshold > maxThreshold {
		return s, apperr.InvalidField("waf.inbound_threshold", "anomaly thresholds must be 1 to %d", maxThreshold)
	}
	if len(s.ExcludeRules) > MaxExclusions {
		return s, apperr.InvalidField("waf.exclude_rules", "at most %d rule exclusions", MaxExclusions)
	}
	var ex []string
	for _, r := range s.ExcludeRules {
		r = strings.TrimSpace(r)
		lo, hi, err := parseRuleRange(r)
		if err != nil {
			return s, err
		}
		if lo == hi {
			ex = append(ex, strconv.Itoa(lo))
		} else {
			ex = append(ex, strconv.Itoa(lo)+"-"+strconv.Itoa(hi))
		}
	}
	slices.Sort(ex)
	s.ExcludeRules = slices.Compact(ex)
	if s.Mode == Off {
		// Nothing else matters; keep the canonical form small.
		return Settings{Mode: Off}, nil
	}
	return s, nil
}

// parseRuleRange parses "N" or "A-B" with 1 ≤ A ≤ B ≤ 9,999,999.
func parseRuleRange(r string) (int, int, error) {
	bad := apperr.InvalidField("waf.exclude_rules", "rule exclusion %q must be a rule id or a range like 942100-942999", truncate(r, 40))
	lo, hi, isRange := strings.Cut(r, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 9999999 || len(lo) > 7 {
		return 0, 0, bad
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil || b < a || b > 9999999 || len(hi) > 7 {
			return 0, 0, bad
		}
	}
	return a, b, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// key identifies the compiled rule set s needs.
func (s Settings) key() string {
	return fmt.Sprintf("%s|%d|%d|%d|%v|%s", s.Mode, s.Paranoia, s.InboundThreshold, s.OutboundThreshold,
		s.InspectResponses, strings.Join(s.ExcludeRules, ","))
}
