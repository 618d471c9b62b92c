package policy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

// maxOrgExceptions caps the exceptions stored for one org.
const maxOrgExceptions = 1000

const selectException = `SELECT id, rule, fingerprint, paths, repository, image, environment, reason, owner, expires
	FROM policy_exceptions`

func scanException(r interface{ Scan(...any) error }, orgName string) (exception.Exception, error) {
	var (
		e              exception.Exception
		paths, expires string
	)
	if err := r.Scan(&e.Number, &e.ID, &e.Fingerprint, &paths, &e.Repository, &e.Image, &e.Environment, &e.Reason, &e.Owner, &expires); err != nil {
		return e, err
	}
	if paths != "" {
		e.Paths = strings.Split(paths, "\n")
	}
	d, err := exception.ParseDate(expires)
	if err != nil {
		return e, fmt.Errorf("stored exception %d: %w", e.Number, err)
	}
	e.Expires = d
	e.Source = "org " + orgName
	return e, nil
}

func (s *Service) storedExceptions(ctx context.Context, orgID int64) ([]exception.Exception, error) {
	o, err := s.ids.OrgByID(ctx, orgID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, selectException+" WHERE org_id = ? ORDER BY id", orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []exception.Exception
	for rows.Next() {
		e, err := scanException(rows, o.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ExceptionState is an exception as listed: where it comes from and
// whether it is in force.
type ExceptionState struct {
	exception.Exception
	// Expired is true once the exception stopped applying.
	Expired bool `json:"expired"`
	// Stored is true for exceptions kept in the database (they can be
	// deleted there); others live in files under review.
	Stored bool `json:"stored"`
}

// Exceptions lists every exception that applies to an org's decisions —
// the policy bundles', the org's stored ones, and the repositories' (when
// source hosting provides them) — in force first, then the expired ones.
func (s *Service) Exceptions(ctx context.Context, orgID int64) ([]ExceptionState, error) {
	now := s.now()
	var out []ExceptionState
	for _, e := range s.Engine().Exceptions() {
		out = append(out, ExceptionState{Exception: e, Expired: e.Expired(now)})
	}
	stored, err := s.storedExceptions(ctx, orgID)
	if err != nil {
		return nil, err
	}
	for _, e := range stored {
		out = append(out, ExceptionState{Exception: e, Expired: e.Expired(now), Stored: true})
	}
	if s.external != nil {
		more, err := s.external.Exceptions(ctx, orgID)
		if err != nil {
			return nil, fmt.Errorf("list repository exceptions: %w", err)
		}
		for _, e := range more {
			out = append(out, ExceptionState{Exception: e, Expired: e.Expired(now)})
		}
	}
	slices.SortStableFunc(out, func(a, b ExceptionState) int {
		switch {
		case a.Expired == b.Expired:
			return 0
		case a.Expired:
			return 1
		}
		return -1
	})
	return out, nil
}

// AddException stores an org exception. It must name an id (a policy,
// rule or advisory id) or a fingerprint, give a reason, and expire within
// MaxExceptionDays; the owner defaults to the caller. The exception
// applies to the org's decisions at once.
func (s *Service) AddException(ctx context.Context, o identity.Org, e exception.Exception) (exception.Exception, error) {
	e.Normalize()
	if e.Owner == "" {
		e.Owner = reqinfo.From(ctx).ActorName
	}
	if err := e.Validate("exception"); err != nil {
		return e, apperr.E(apperr.Invalid, "%s", err.Error())
	}
	if e.ID == "" && e.Fingerprint == "" {
		return e, apperr.InvalidField("id", "an org exception names a policy, rule or advisory id (or a fingerprint); paths alone would set every rule aside")
	}
	if e.Owner == "" {
		return e, apperr.InvalidField("owner", "an exception needs an owner")
	}
	today := s.now().UTC().Truncate(24 * time.Hour)
	switch {
	case e.Expires.IsZero():
		return e, apperr.InvalidField("expires", "an org exception needs an expiry date (at most %d days ahead)", MaxExceptionDays)
	case e.Expires.Before(today):
		return e, apperr.InvalidField("expires", "expiry %s is in the past", e.Expires)
	case e.Expires.After(today.AddDate(0, 0, MaxExceptionDays)):
		return e, apperr.InvalidField("expires", "expiry %s is more than %d days ahead", e.Expires, MaxExceptionDays)
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM policy_exceptions WHERE org_id = ?", o.ID).Scan(&n); err != nil {
			return err
		}
		if n >= maxOrgExceptions {
			return apperr.E(apperr.Conflict, "the org has %d exceptions, the most it may have; delete expired ones first", n)
		}
		err := tx.QueryRow(ctx, `INSERT INTO policy_exceptions (org_id, rule, fingerprint, paths, repository, image, environment,
			reason, owner, expires, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			o.ID, e.ID, e.Fingerprint, strings.Join(e.Paths, "\n"), e.Repository, e.Image, e.Environment, e.Reason, e.Owner,
			e.Expires.String(), reqinfo.From(ctx).ActorName, store.Time(s.now())).Scan(&e.Number)
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "policy.exception.create", OrgID: o.ID,
			Target:  audit.Target{Type: "policy_exception", ID: strconv.FormatInt(e.Number, 10), Name: e.What()},
			Details: exceptionDetails(e)})
	})
	if err != nil {
		return e, err
	}
	e.Source = "org " + o.Name
	s.forgetOrgExceptions(o.ID)
	return e, nil
}

func exceptionDetails(e exception.Exception) map[string]any {
	d := map[string]any{"reason": e.Reason, "owner": e.Owner, "expires": e.Expires.String()}
	for k, v := range map[string]string{"id": e.ID, "fingerprint": e.Fingerprint, "repository": e.Repository, "image": e.Image,
		"environment": e.Environment} {
		if v != "" {
			d[k] = v
		}
	}
	if len(e.Paths) > 0 {
		d["paths"] = e.Paths
	}
	return d
}

// DeleteException removes an org exception; decisions stop honouring it
// at once.
func (s *Service) DeleteException(ctx context.Context, o identity.Org, number int64) error {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		e, err := scanException(tx.QueryRow(ctx, selectException+" WHERE org_id = ? AND id = ?", o.ID, number), o.Name)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "no exception #%d in %s", number, o.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM policy_exceptions WHERE id = ?", number); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "policy.exception.delete", OrgID: o.ID,
			Target:  audit.Target{Type: "policy_exception", ID: strconv.FormatInt(number, 10), Name: e.What()},
			Details: exceptionDetails(e)})
	})
	if err == nil {
		s.forgetOrgExceptions(o.ID)
	}
	return err
}
