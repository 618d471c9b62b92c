package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/store"
)

// EventBypass is the event a push protection bypass raises alerts from.
const EventBypass = "scm.secret_bypass"

// BypassEvent is the payload of scm.secret_bypass: a push that push
// protection let through because the pusher gave a reason.
type BypassEvent struct {
	Repo     string          `json:"repo"` // ORG/NAME
	RepoID   int64           `json:"repo_id"`
	Ref      string          `json:"ref"`
	Pusher   string          `json:"pusher"`
	Reason   string          `json:"reason"`
	Findings []BypassFinding `json:"findings"`
}

// BypassFinding is one secret pushed past push protection.
type BypassFinding struct {
	RuleID      string `json:"rule_id"`
	Title       string `json:"title"`
	Severity    string `json:"severity"`
	Path        string `json:"path"`
	Line        int    `json:"line"`
	Commit      string `json:"commit"`
	Fingerprint string `json:"fingerprint"`
}

// maxBypassFindings bounds the alerts one bypass raises.
const maxBypassFindings = 500

// handleBypass raises an open secret alert for every finding of a bypass.
// Such alerts come from a push, not from a scan of the default branch:
// later scans neither fix nor reopen them; a maintainer dismisses them
// once the secret is rotated.
func (s *Service) handleBypass(ctx context.Context, e events.Event) error {
	var p BypassEvent
	if err := e.Decode(&p); err != nil {
		s.log.WarnContext(ctx, "ignoring malformed bypass event", "event", e.Seq, logging.KeyErr, err)
		return nil
	}
	repo, err := s.repoOf(ctx, p.Repo, p.RepoID, "")
	if err != nil {
		s.log.WarnContext(ctx, "ignoring bypass event", "event", e.Seq, "repo", clip(p.Repo), logging.KeyErr, err)
		return nil
	}
	_, err = s.RaiseBypass(ctx, repo, p)
	if err != nil && apperr.KindOf(err) != apperr.Internal && apperr.KindOf(err) != apperr.Unavailable {
		s.log.WarnContext(ctx, "ignoring bypass event", "event", e.Seq, "repo", repo.Name, logging.KeyErr, err)
		return nil
	}
	return err
}

// RaiseBypass opens an alert for each finding pushed past push protection
// (once per finding, however often the event is delivered) and returns
// how many it opened.
func (s *Service) RaiseBypass(ctx context.Context, repo Repo, p BypassEvent) (int, error) {
	findings := p.Findings
	if len(findings) > maxBypassFindings {
		findings = findings[:maxBypassFindings]
	}
	reason, pusher := clipTo(printable(p.Reason), 500), clipTo(printable(p.Pusher), 64)
	opened := 0
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		opened = 0
		now := s.now().UTC().Truncate(time.Microsecond)
		for _, bf := range findings {
			if bf.Fingerprint == "" || len(bf.Fingerprint) > 128 || !commitRE.MatchString(bf.Commit) {
				continue
			}
			sev, err := scan.ParseSeverity(bf.Severity)
			if err != nil {
				sev = scan.SeverityHigh
			}
			f := scan.Finding{Kind: scan.KindSecret, RuleID: clipTo(printable(bf.RuleID), 200), Title: clipTo(printable(bf.Title), 500),
				Severity: sev, Location: scan.Location{Path: clipTo(printable(bf.Path), 1024), StartLine: max(bf.Line, 0), Commit: bf.Commit},
				Fingerprint: bf.Fingerprint,
				Description: fmt.Sprintf("Pushed to %s by %s past push protection, with the reason: %s", clipTo(printable(p.Ref), 255), pusher, reason),
				Remediation: "Rotate the secret at its issuer now: it is in the repository's history. Then dismiss this alert."}
			if f.Title == "" {
				f.Title = f.RuleID
			}
			a := Alert{Source: SourceBypass, OrgID: repo.Org.ID, RepoID: repo.ID, Repo: repo.Name, Fingerprint: f.Fingerprint, Kind: f.Kind, RuleID: f.RuleID,
				Title: f.Title, Severity: f.Severity, Path: f.Location.Path, Line: f.Location.StartLine, Finding: f, State: StateOpen,
				FirstSeenAt: now, FirstCommit: bf.Commit, LastSeenAt: now, LastCommit: bf.Commit, OpenedAt: now}
			err = tx.QueryRow(ctx, `INSERT INTO alerts (org_id, repo_id, repo, source, fingerprint, kind, rule_id, title, severity, path,
				line, finding, state, first_seen_at, first_commit, last_seen_at, last_commit, opened_at)
				VALUES (?, ?, ?, 'bypass', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (repo_id, source, fingerprint) DO NOTHING RETURNING id`,
				a.OrgID, a.RepoID, a.Repo, a.Fingerprint, a.Kind, a.RuleID, a.Title, int(a.Severity), a.Path, a.Line, findingJSON(f),
				a.State, store.Time(now), bf.Commit, store.Time(now), bf.Commit, store.Time(now)).Scan(&a.ID)
			if apperr.Is(err, apperr.NotFound) {
				continue // raised before: a redelivered event
			}
			if err != nil {
				return fmt.Errorf("raise bypass alert: %w", err)
			}
			if err := s.publish(ctx, tx, EventOpened, a); err != nil {
				return err
			}
			opened++
		}
		return nil
	})
	return opened, err
}
