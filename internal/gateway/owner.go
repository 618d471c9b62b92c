package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/store"
)

// Host ownership. A host belongs to one owner: a project, or the site
// (site routes and the config file's). The router sends a request to the
// exact host entry before a one-label wildcard (*.b.c), so a wildcard and
// the exact names one label below it are the same host for ownership: one
// owner may not claim a.b.c while another holds *.b.c, nor *.b.c while
// another holds a.b.c.

// hostParent is the zone a host's ownership is decided in: what follows
// its first label ("b.c" for a.b.c and for *.b.c), or the host itself when
// it has one label. Two hosts can only conflict when their parents are
// equal.
func hostParent(h string) string {
	if i := strings.IndexByte(h, '.'); i >= 0 {
		return h[i+1:]
	}
	return h
}

// hostsConflict reports whether two route hosts overlap for ownership: the
// same name, or a wildcard and a name one label below it.
func hostsConflict(a, b string) bool {
	if a == b {
		return true
	}
	if a == "" || b == "" {
		return false
	}
	aw, bw := strings.HasPrefix(a, "*."), strings.HasPrefix(b, "*.")
	if aw == bw {
		return false
	}
	return hostParent(a) == hostParent(b) && strings.Contains(a, ".") && strings.Contains(b, ".")
}

// checkWildcardDepth refuses a project wildcard over a top-level name
// (*.test, *.com): it would take every host under it not yet routed.
func checkWildcardDepth(sc Scope, host string) error {
	if sc.ProjectID == 0 || !strings.HasPrefix(host, "*.") {
		return nil
	}
	if !strings.Contains(host[2:], ".") {
		return apperr.InvalidField("host", "a project's wildcard needs at least two labels after *. (*.example.com, not *.com)")
	}
	return nil
}

// errHostTaken is the conflict a claim of another owner's host answers. It
// names no other owner nor their routes.
func errHostTaken(host string) error {
	return &apperr.Error{Kind: apperr.Conflict, Field: "host", Msg: fmt.Sprintf("host %q is taken: another owner routes it (or a wildcard over it)", truncate(host, 260))}
}

// hostAdvisoryLock namespaces the per-host advisory locks (two-key form).
const hostAdvisoryLock = 1735551348

// lockHost serialises, until tx ends, the claims that could conflict with
// host (those with the same parent). SQLite transactions already hold the
// write lock.
func lockHost(ctx context.Context, tx *store.Tx, host string) error {
	if tx.Dialect() != store.Postgres {
		return nil
	}
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(?))", hostAdvisoryLock, hostParent(host))
	return err
}

// hostTaken reports whether a stored route of an owner other than project
// (0: the site) holds host or a host conflicting with it.
func (s *Service) hostTaken(ctx context.Context, q store.Querier, project int64, host string) (bool, error) {
	hosts, err := storedHostsNear(ctx, q, project, host)
	if err != nil {
		return false, err
	}
	for _, h := range hosts {
		if hostsConflict(h, host) {
			return true, nil
		}
	}
	return false, nil
}

// storedHostsNear returns the hosts of other owners' routes that could
// conflict with host: host itself, *.parent, and for a wildcard the names
// one label below it.
func storedHostsNear(ctx context.Context, q store.Querier, project int64, host string) ([]string, error) {
	args := []any{project, host}
	where := "host = ?"
	if host != "" && strings.Contains(host, ".") {
		parent := hostParent(host)
		where += " OR host = ?"
		args = append(args, "*."+parent)
		if strings.HasPrefix(host, "*.") {
			// Names end with "."+parent; LIKE's _ may match more, the
			// caller filters.
			where += " OR host LIKE ?"
			args = append(args, "%."+parent)
		}
	}
	rows, err := q.Query(ctx, "SELECT DISTINCT host FROM gateway_routes WHERE project_id <> ? AND ("+where+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
