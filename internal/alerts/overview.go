package alerts

import (
	"context"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/scan"
)

// SeverityOrder lists severities worst first, as the overview shows them.
func SeverityOrder() []scan.Severity {
	return []scan.Severity{scan.SeverityCritical, scan.SeverityHigh, scan.SeverityMedium, scan.SeverityLow, scan.SeverityInfo, scan.SeverityUnknown}
}

// Age buckets of open alerts, by how long they have been open.
var ageBuckets = []struct {
	Label string
	Below time.Duration // 0: no upper bound
}{
	{"under 7 days", 7 * 24 * time.Hour},
	{"7 to 30 days", 30 * 24 * time.Hour},
	{"30 to 90 days", 90 * 24 * time.Hour},
	{"90 days or more", 0},
}

// Overview is an org's security posture.
type Overview struct {
	Open, Dismissed, Fixed int
	// BySeverity counts open alerts in SeverityOrder.
	BySeverity []int
	// Ages counts open alerts by age and severity (in SeverityOrder).
	Ages []AgeRow
	// Oldest are the open alerts open longest, oldest first.
	Oldest []Alert
	Repos  []RepoSummary
}

// AgeRow is one age bucket of the overview.
type AgeRow struct {
	Label      string
	BySeverity []int
	Total      int
}

// RepoSummary counts a repository's open alerts.
type RepoSummary struct {
	RepoStatus
	Open       int
	BySeverity []int
}

// MaxOldest is how many of the oldest open alerts the overview lists.
const MaxOldest = 20

func severityIndex(s scan.Severity) int {
	for i, o := range SeverityOrder() {
		if o == s {
			return i
		}
	}
	return len(SeverityOrder()) - 1
}

// Overview counts org o's alerts by state, severity and age.
func (s *Service) Overview(ctx context.Context, o identity.Org) (Overview, error) {
	n := len(SeverityOrder())
	v := Overview{BySeverity: make([]int, n)}
	rows, err := s.db.Query(ctx, "SELECT state, COUNT(*) FROM alerts WHERE org_id = ? GROUP BY state", o.ID)
	if err != nil {
		return v, err
	}
	for rows.Next() {
		var (
			st State
			c  int
		)
		if err := rows.Scan(&st, &c); err != nil {
			rows.Close()
			return v, err
		}
		switch st {
		case StateOpen:
			v.Open = c
		case StateDismissed:
			v.Dismissed = c
		case StateFixed:
			v.Fixed = c
		}
	}
	if err := rows.Close(); err != nil {
		return v, err
	}

	now := s.now()
	for _, b := range ageBuckets {
		v.Ages = append(v.Ages, AgeRow{Label: b.Label, BySeverity: make([]int, n)})
	}
	rows, err = s.db.Query(ctx, `SELECT severity,
		CASE WHEN opened_at > ? THEN 0 WHEN opened_at > ? THEN 1 WHEN opened_at > ? THEN 2 ELSE 3 END,
		COUNT(*) FROM alerts WHERE org_id = ? AND state = 'open' GROUP BY 1, 2`,
		now.Add(-ageBuckets[0].Below).UnixMicro(), now.Add(-ageBuckets[1].Below).UnixMicro(), now.Add(-ageBuckets[2].Below).UnixMicro(), o.ID)
	if err != nil {
		return v, err
	}
	for rows.Next() {
		var sev, bucket, c int
		if err := rows.Scan(&sev, &bucket, &c); err != nil {
			rows.Close()
			return v, err
		}
		i := severityIndex(scan.Severity(sev))
		v.BySeverity[i] += c
		v.Ages[bucket].BySeverity[i] += c
		v.Ages[bucket].Total += c
	}
	if err := rows.Close(); err != nil {
		return v, err
	}

	if v.Oldest, err = s.query(ctx, selectAlert+" WHERE org_id = ? AND state = 'open' ORDER BY opened_at, id LIMIT "+strconv.Itoa(MaxOldest), o.ID); err != nil {
		return v, err
	}

	repos, err := s.Repos(ctx, o)
	if err != nil {
		return v, err
	}
	byName := map[string]int{}
	for _, r := range repos {
		byName[r.Name] = len(v.Repos)
		v.Repos = append(v.Repos, RepoSummary{RepoStatus: r, BySeverity: make([]int, n)})
	}
	rows, err = s.db.Query(ctx, "SELECT repo, severity, COUNT(*) FROM alerts WHERE org_id = ? AND state = 'open' GROUP BY repo, severity", o.ID)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			repo   string
			sev, c int
		)
		if err := rows.Scan(&repo, &sev, &c); err != nil {
			return v, err
		}
		i, ok := byName[repo]
		if !ok {
			i = len(v.Repos)
			byName[repo] = i
			v.Repos = append(v.Repos, RepoSummary{RepoStatus: RepoStatus{Name: repo}, BySeverity: make([]int, n)})
		}
		v.Repos[i].Open += c
		v.Repos[i].BySeverity[severityIndex(scan.Severity(sev))] += c
	}
	return v, rows.Err()
}
