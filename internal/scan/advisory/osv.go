package advisory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// maxRecordSize caps one advisory file; real OSV records are a few KiB.
const maxRecordSize = 16 << 20

// osvRecord is the part of an OSV record (schema 1.x) that Rampart reads.
type osvRecord struct {
	ID               string          `json:"id"`
	Modified         *time.Time      `json:"modified"`
	Published        *time.Time      `json:"published"`
	Withdrawn        *time.Time      `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []osvSeverity   `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	References       []osvReference  `json:"references"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvReference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Severity          []osvSeverity   `json:"severity"`
	Ranges            []osvRange      `json:"ranges"`
	Versions          []string        `json:"versions"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

type osvRange struct {
	Type   string  `json:"type"`
	Events []event `json:"events"`
}

// event is one OSV range event; exactly one field is set.
type event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// affectedSpec is what the database keeps of one affected package: the
// ranges Rampart evaluates (SEMVER and ECOSYSTEM; GIT ranges name commits,
// not versions) and the explicit versions list. It is stored as JSON.
type affectedSpec struct {
	Ranges   []rangeSpec `json:"ranges,omitempty"`
	Versions []string    `json:"versions,omitempty"`
}

type rangeSpec struct {
	Type   string  `json:"type"`
	Events []event `json:"events"`
}

// record is one parsed advisory, ready to store.
type record struct {
	ID        string
	Modified  time.Time
	Published time.Time
	Withdrawn time.Time
	Digest    string
	Summary   string
	Details   string
	Aliases   []string
	Refs      []string
	Affected  []affectedRow
}

// affectedRow is one package an advisory affects.
type affectedRow struct {
	Ecosystem string // base ecosystem: Debian
	Release   string // the rest of the OSV ecosystem string: 12
	Name      string // normalised (see normalizeName)
	Spec      affectedSpec
	Severity  severity
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$`)

// parseRecord reads one OSV JSON document. It rejects documents that are
// not JSON objects, have no usable id or carry malformed events; it keeps
// only what matching and reporting need.
func parseRecord(data []byte) (*record, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("advisory is %d bytes, over the %d byte limit", len(data), maxRecordSize)
	}
	var raw osvRecord
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not an OSV record: %w", err)
	}
	if raw.ID == "" {
		return nil, errors.New("OSV record has no id")
	}
	if !idPattern.MatchString(raw.ID) {
		return nil, fmt.Errorf("OSV record id %q is not a valid identifier", clip(raw.ID))
	}
	sum := sha256.Sum256(data)
	r := &record{
		ID:      raw.ID,
		Digest:  hex.EncodeToString(sum[:16]),
		Summary: cleanText(raw.Summary),
		Details: cleanText(raw.Details),
	}
	if raw.Modified != nil {
		r.Modified = raw.Modified.UTC()
	}
	if raw.Published != nil {
		r.Published = raw.Published.UTC()
	}
	if raw.Withdrawn != nil {
		r.Withdrawn = raw.Withdrawn.UTC()
		if r.Withdrawn.IsZero() {
			// A zero time still says "withdrawn"; keep it distinguishable
			// from "not withdrawn" (stored as 0).
			r.Withdrawn = time.Unix(0, 1000).UTC()
		}
	}
	seen := map[string]bool{r.ID: true}
	for _, a := range raw.Aliases {
		if a != "" && !seen[a] && idPattern.MatchString(a) {
			seen[a] = true
			r.Aliases = append(r.Aliases, a)
		}
	}
	for _, ref := range raw.References {
		if ref.URL != "" && utf8.ValidString(ref.URL) {
			r.Refs = append(r.Refs, ref.URL)
		}
	}
	top := severityOf(raw.Severity, raw.DatabaseSpecific, nil)
	for i, a := range raw.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			continue // GIT-only entries name repositories, not packages
		}
		eco, release := splitEcosystem(a.Package.Ecosystem)
		spec := affectedSpec{}
		for _, v := range a.Versions {
			if v != "" {
				spec.Versions = append(spec.Versions, v)
			}
		}
		for j, rg := range a.Ranges {
			if rg.Type != "SEMVER" && rg.Type != "ECOSYSTEM" {
				continue
			}
			evs := make([]event, 0, len(rg.Events))
			for k, e := range rg.Events {
				n := 0
				for _, s := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if s != "" {
						n++
					}
				}
				if n != 1 {
					return nil, fmt.Errorf("affected[%d].ranges[%d].events[%d]: want exactly one of introduced, fixed, last_affected, limit", i, j, k)
				}
				evs = append(evs, e)
			}
			if len(evs) > 0 {
				spec.Ranges = append(spec.Ranges, rangeSpec{Type: rg.Type, Events: evs})
			}
		}
		if len(spec.Ranges) == 0 && len(spec.Versions) == 0 {
			continue
		}
		sev := severityOf(a.Severity, a.DatabaseSpecific, a.EcosystemSpecific)
		if sev.Level == 0 {
			sev = top
		}
		r.Affected = append(r.Affected, affectedRow{
			Ecosystem: eco,
			Release:   release,
			Name:      normalizeName(eco, a.Package.Name),
			Spec:      spec,
			Severity:  sev,
		})
	}
	return r, nil
}

// splitEcosystem splits an OSV ecosystem string such as "Debian:12" or
// "Red Hat:enterprise_linux:9::appstream" into its base and the rest.
func splitEcosystem(s string) (base, release string) {
	base, release, _ = strings.Cut(s, ":")
	return strings.TrimSpace(base), strings.TrimSpace(release)
}

// normalizeName gives the form of a package name that both the database
// and Match use, so that names equal under the ecosystem's own rules
// compare equal: PyPI names per PEP 503 (lower case, runs of "-", "_" and
// "." as one "-"), NuGet and Packagist names in lower case (both
// registries are case-insensitive). Other ecosystems compare names exactly.
func normalizeName(ecosystem, name string) string {
	switch ecosystem {
	case "PyPI":
		var b strings.Builder
		sep := false
		for _, c := range strings.ToLower(strings.TrimSpace(name)) {
			if c == '-' || c == '_' || c == '.' {
				sep = true
				continue
			}
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			b.WriteRune(c)
		}
		return b.String()
	case "NuGet", "Packagist":
		return strings.ToLower(name)
	}
	return name
}

// cleanText drops invalid UTF-8 and NUL bytes, which PostgreSQL refuses.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
