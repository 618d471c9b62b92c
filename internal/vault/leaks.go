package vault

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Leak to rotation: the vault keeps a keyed fingerprint (HMAC-SHA256) of
// every version's value. Push protection and scans hand what they find —
// the value, or its fingerprint computed with Fingerprint — to
// ReportLeaks; a match marks the version (and, when it is current, the
// secret) leaked, records an alert naming where it leaked, and either
// rotates the secret at once (when its project enables rotation on leak
// and the secret has a generator) or leaves the rotation offered in the
// API and UI.

// Found is a secret value found somewhere it should not be.
type Found struct {
	// Value is the value found, or Fingerprint its fingerprint (from
	// Service.Fingerprint); one of them is required.
	Value       *Value
	Fingerprint string
	// Source names the finder: push-protection, scan, pipeline-log, …
	Source string
	// Location says where: repository, commit, path and line; image and
	// layer; pipeline run and job.
	Location string
}

// Leak is an alert: a secret version's value was found somewhere.
type Leak struct {
	ID       int64
	Ref      Ref
	Version  int
	Current  bool // the leaked version was the current one when found
	Source   string
	Location string
	FoundAt  time.Time
	// RotatedVersion and ResolvedAt are set once a rotation replaced the
	// leaked value.
	RotatedVersion int
	ResolvedAt     time.Time
	// AutoRotated is set when the vault rotated the secret itself.
	AutoRotated bool
}

// Alerter receives leak alerts (monitor's security events implement it).
type Alerter interface {
	SecretLeaked(ctx context.Context, l Leak) error
}

// Fingerprint returns the keyed fingerprint of a value, for finders that
// must not keep values: only fingerprints made with this vault's key
// match.
func (s *Service) Fingerprint(v Value) string { return s.fingerprint(v.b) }

// ReportLeaks matches found values against every stored version and
// records a leak per match (once per version and location). It returns the
// leaks it recorded.
func (s *Service) ReportLeaks(ctx context.Context, found []Found) ([]Leak, error) {
	if len(found) > 10000 {
		return nil, apperr.E(apperr.TooLarge, "at most 10000 findings at a time")
	}
	var out []Leak
	for _, f := range found {
		fp := f.Fingerprint
		if f.Value != nil {
			fp = s.fingerprint(f.Value.b)
		}
		if len(fp) != 64 {
			return out, apperr.InvalidField("fingerprint", "a finding needs its value or its 64-character fingerprint")
		}
		f.Source, f.Location = clipText(f.Source, 64), clipText(f.Location, 1000)
		leaks, err := s.recordLeak(ctx, fp, f)
		if err != nil {
			return out, err
		}
		out = append(out, leaks...)
	}
	for i, l := range out {
		if !l.Current {
			continue
		}
		rotated, err := s.rotateOnLeak(ctx, l)
		if err != nil {
			s.log.WarnContext(ctx, "automatic rotation of a leaked secret failed", "secret", l.Ref.String(), "err", err)
		} else if rotated > 0 {
			out[i].AutoRotated, out[i].RotatedVersion = true, rotated
		}
	}
	return out, nil
}

// hiddenLocation replaces where a leak was found for a viewer who may not
// read the secret.
const hiddenLocation = "(hidden: you may not read this secret)"

// LeaksFor is Leaks as rd may see them: where each leak was found is shown
// only to an org's policy managers (manage) and to readers a policy grants
// the secret. Anyone who may push to a repository can push values past
// push protection; were the matching line shown to every org member, a
// member without access could push guesses, one per line, and learn which
// one is a secret's value.
func (s *Service) LeaksFor(ctx context.Context, org string, open bool, rd Reader, manage bool) ([]Leak, error) {
	ls, err := s.Leaks(ctx, org, open)
	if err != nil || manage {
		return ls, err
	}
	o, err := s.ids.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	for i := range ls {
		policy, err := s.grant(ctx, o, ls[i].Ref, rd)
		if err != nil {
			return nil, err
		}
		if policy == "" {
			ls[i].Location = hiddenLocation
		}
	}
	return ls, nil
}

func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}

func (s *Service) recordLeak(ctx context.Context, fp string, f Found) ([]Leak, error) {
	type hit struct {
		sec     Secret
		version int
	}
	rows, err := s.db.Query(ctx, `SELECT v.secret_id, v.version, s.current_version, s.org_id, s.project_id, s.env, s.name
		FROM vault_versions v JOIN vault_secrets s ON s.id = v.secret_id WHERE v.fingerprint = ?`, fp)
	if err != nil {
		return nil, err
	}
	var hits []hit
	for rows.Next() {
		var (
			h         hit
			projectID *int64
		)
		if err := rows.Scan(&h.sec.ID, &h.version, &h.sec.CurrentVersion, &h.sec.orgID, &projectID, &h.sec.Ref.Env, &h.sec.Ref.Name); err != nil {
			rows.Close()
			return nil, err
		}
		if projectID != nil {
			h.sec.projectID = *projectID
		}
		hits = append(hits, h)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	var out []Leak
	for _, h := range hits {
		if err := s.fillScope(ctx, &h.sec); err != nil {
			return nil, err
		}
		l := Leak{Ref: h.sec.Ref, Version: h.version, Current: h.version == h.sec.CurrentVersion, Source: f.Source,
			Location: f.Location, FoundAt: s.now().UTC().Truncate(time.Microsecond)}
		recorded := false
		err := s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM vault_leaks WHERE secret_id = ? AND version = ? AND location = ? AND resolved_at IS NULL",
				h.sec.ID, h.version, l.Location).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := tx.QueryRow(ctx, `INSERT INTO vault_leaks (secret_id, version, found_at, source, location, current)
				VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, h.sec.ID, h.version, store.Time(l.FoundAt), l.Source, l.Location, l.Current).Scan(&l.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "UPDATE vault_versions SET leaked_at = ? WHERE secret_id = ? AND version = ? AND leaked_at IS NULL",
				store.Time(l.FoundAt), h.sec.ID, h.version); err != nil {
				return err
			}
			if l.Current {
				if _, err := tx.Exec(ctx, "UPDATE vault_secrets SET leaked_at = ? WHERE id = ? AND current_version = ?",
					store.Time(l.FoundAt), h.sec.ID, h.version); err != nil {
					return err
				}
			}
			recorded = true
			return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.secret.leaked", Outcome: audit.Failure, OrgID: h.sec.orgID,
				Target:  secretTarget(h.sec),
				Details: map[string]any{"version": h.version, "current": l.Current, "source": l.Source, "location": l.Location}})
		})
		if err != nil {
			return out, err
		}
		if !recorded {
			continue
		}
		s.log.WarnContext(ctx, "secret leaked", "secret", l.Ref.String(), "version", l.Version, "current", l.Current,
			"source", l.Source, "location", l.Location)
		if s.alerts != nil {
			if err := s.alerts.SecretLeaked(ctx, l); err != nil {
				s.log.WarnContext(ctx, "raise leak alert", "secret", l.Ref.String(), "err", err)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// fillScope sets a secret's org and project names from its ids.
func (s *Service) fillScope(ctx context.Context, sec *Secret) error {
	o, err := s.ids.OrgByID(ctx, sec.orgID)
	if err != nil {
		return err
	}
	sec.Ref.Org = o.Name
	if sec.projectID == 0 {
		return nil
	}
	ps, err := s.ids.Projects(ctx, o.ID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.ID == sec.projectID {
			sec.Ref.Project = p.Name
			return nil
		}
	}
	return apperr.E(apperr.NotFound, "project %d not found", sec.projectID)
}

// rotateOnLeak rotates a leaked secret when its project enables it and
// the secret has a generator; it returns the new version (0: not rotated).
func (s *Service) rotateOnLeak(ctx context.Context, l Leak) (int, error) {
	sec, err := s.Metadata(ctx, l.Ref)
	if err != nil || sec.Generator == "" || sec.projectID == 0 || sec.CurrentVersion != l.Version {
		return 0, err
	}
	var rotate bool
	err = s.db.QueryRow(ctx, "SELECT rotate_on_leak FROM vault_project_settings WHERE project_id = ?", sec.projectID).Scan(&rotate)
	if apperr.Is(err, apperr.NotFound) || (err == nil && !rotate) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	_, v, err := s.rotate(ctx, l.Ref, nil, reasonLeak)
	if err != nil {
		return 0, err
	}
	return v.Version, nil
}

// Leaks lists an org's leak alerts, newest first; open only those not yet
// resolved by a rotation.
func (s *Service) Leaks(ctx context.Context, org string, open bool) ([]Leak, error) {
	o, err := s.ids.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	q := `SELECT l.id, l.version, l.found_at, l.source, l.location, l.current, l.rotated_version, l.resolved_at,
		s.id, s.org_id, s.project_id, s.env, s.name FROM vault_leaks l JOIN vault_secrets s ON s.id = l.secret_id WHERE s.org_id = ?`
	if open {
		q += " AND l.resolved_at IS NULL"
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY l.id DESC LIMIT 1000", o.ID)
	if err != nil {
		return nil, err
	}
	var (
		out  []Leak
		secs []Secret
	)
	for rows.Next() {
		var (
			l         Leak
			sec       Secret
			projectID *int64
			rotated   *int64
		)
		if err := rows.Scan(&l.ID, &l.Version, store.TimeDest(&l.FoundAt), &l.Source, &l.Location, &l.Current, &rotated,
			store.TimeDest(&l.ResolvedAt), &sec.ID, &sec.orgID, &projectID, &sec.Ref.Env, &sec.Ref.Name); err != nil {
			rows.Close()
			return nil, err
		}
		if projectID != nil {
			sec.projectID = *projectID
		}
		if rotated != nil {
			l.RotatedVersion = int(*rotated)
		}
		out, secs = append(out, l), append(secs, sec)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.fillScope(ctx, &secs[i]); err != nil {
			return nil, err
		}
		out[i].Ref = secs[i].Ref
	}
	return out, nil
}

// ProjectSettings are a project's vault settings.
type ProjectSettings struct {
	// RotateOnLeak rotates a leaked secret at once when it has a generator.
	RotateOnLeak bool
	// RestartOnRotate restarts the project's workloads after a rotation.
	RestartOnRotate bool
}

// Settings returns a project's vault settings.
func (s *Service) Settings(ctx context.Context, sc Scope) (ProjectSettings, error) {
	p, err := s.resolve(ctx, Scope{Org: sc.Org, Project: sc.Project})
	if err != nil {
		return ProjectSettings{}, err
	}
	if p.project.ID == 0 {
		return ProjectSettings{}, apperr.E(apperr.Invalid, "settings belong to a project")
	}
	var ps ProjectSettings
	err = s.db.QueryRow(ctx, "SELECT rotate_on_leak, restart_on_rotate FROM vault_project_settings WHERE project_id = ?", p.project.ID).
		Scan(&ps.RotateOnLeak, &ps.RestartOnRotate)
	if apperr.Is(err, apperr.NotFound) {
		return ProjectSettings{}, nil
	}
	return ps, err
}

// SetSettings changes a project's vault settings.
func (s *Service) SetSettings(ctx context.Context, sc Scope, ps ProjectSettings) error {
	p, err := s.resolve(ctx, Scope{Org: sc.Org, Project: sc.Project})
	if err != nil {
		return err
	}
	if p.project.ID == 0 {
		return errors.New("vault: settings belong to a project")
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO vault_project_settings (project_id, rotate_on_leak, restart_on_rotate) VALUES (?, ?, ?)
			ON CONFLICT (project_id) DO UPDATE SET rotate_on_leak = excluded.rotate_on_leak, restart_on_rotate = excluded.restart_on_rotate`,
			p.project.ID, ps.RotateOnLeak, ps.RestartOnRotate); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.settings.update", OrgID: p.org.ID,
			Target:  audit.Target{Type: "project", ID: itoa(p.project.ID), Name: p.project.Name},
			Details: map[string]any{"rotate_on_leak": ps.RotateOnLeak, "restart_on_rotate": ps.RestartOnRotate}})
	})
}
