package gateway

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the gateway's schema.
var Migrations = store.EmbeddedMigrations("gateway", migrationFS, "migrations")

// Scope is who owns a route: a project, or the site (zero value).
type Scope struct {
	OrgID       int64
	ProjectID   int64
	OrgName     string
	ProjectName string
}

// Site is the scope of site routes.
var Site = Scope{}

func (s Scope) String() string {
	if s.ProjectID == 0 {
		return "site"
	}
	return s.OrgName + "/" + s.ProjectName
}

// key is the route's name in metrics, logs and events: unique across the
// gateway.
func (s Scope) key(name string) string {
	if s.ProjectID == 0 {
		return name
	}
	return s.OrgName + "/" + s.ProjectName + "/" + name
}

// StoredRoute is a route with its owner, as the service lists it.
type StoredRoute struct {
	Route
	Scope Scope
}

// ServiceDeps are the service's collaborators.
type ServiceDeps struct {
	DB      *store.DB
	Audit   *audit.Log
	Gateway *Gateway
	Logger  *slog.Logger
	// ConfigFile, when set, holds site routes managed by the operator;
	// it is re-read when it changes.
	ConfigFile string
	// Poll is how often the service looks for changes made by other
	// replicas and to the config file (default 2s).
	Poll time.Duration
	Now  func() time.Time
	// EventRetention is how long security events are kept (default 30
	// days).
	EventRetention time.Duration
}

// Service manages routes (API, CLI, config file) and keeps the gateway's
// table in step with them.
type Service struct {
	d   ServiceDeps
	log *slog.Logger

	events *EventStore

	// claimMu serialises, in this process, a route's claim of a host
	// (Put: the file routes check through the commit) against the config
	// file's (readFile: the stored routes check through the swap), so
	// neither can take a host the other took meanwhile.
	claimMu sync.Mutex
	// afterFileCheck, when set (tests), runs between a config file's
	// check against the stored routes and the swap of the file routes.
	afterFileCheck func()

	mu         sync.Mutex // serialises reloads
	generation int64
	fileRoutes []Route
	fileMod    time.Time
	fileSize   int64
	// refusedMod and refusedSize are those of the last config file
	// refused for a clash with stored routes, not retried until it
	// changes.
	refusedMod  time.Time
	refusedSize int64
}

// NewService returns the route service.
func NewService(d ServiceDeps) (*Service, error) {
	if d.DB == nil || d.Audit == nil || d.Gateway == nil || d.Logger == nil {
		return nil, errors.New("gateway: DB, Audit, Gateway and Logger are required")
	}
	if d.Poll <= 0 {
		d.Poll = 2 * time.Second
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.EventRetention <= 0 {
		d.EventRetention = 30 * 24 * time.Hour
	}
	return &Service{d: d, log: d.Logger.With(logging.KeyComponent, "gateway"), events: NewEventStore(d.DB)}, nil
}

// Start loads the config file and the stored routes into the gateway. A
// broken config file stops the start with its error.
func (s *Service) Start(ctx context.Context) error {
	if s.d.ConfigFile != "" {
		if _, err := s.readFile(ctx); err != nil {
			return err
		}
	}
	return s.Reload(ctx)
}

// readFile re-reads the config file when it changed; changed reports
// whether the routes were replaced. A file whose routes clash with stored
// ones (a host a project holds, a site route's host and path) is refused:
// the previous file routes stay, and the refusal is logged and audited
// once.
func (s *Service) readFile(ctx context.Context) (changed bool, err error) {
	fi, err := os.Stat(s.d.ConfigFile)
	if err != nil {
		return false, apperr.Wrap(err, apperr.Invalid, "gateway config "+s.d.ConfigFile)
	}
	s.mu.Lock()
	same := fi.ModTime().Equal(s.fileMod) && fi.Size() == s.fileSize
	refused := fi.ModTime().Equal(s.refusedMod) && fi.Size() == s.refusedSize
	s.mu.Unlock()
	if same || refused {
		return false, nil
	}
	fc, err := LoadConfigFile(s.d.ConfigFile)
	if err != nil {
		return false, err
	}
	routes := make([]Route, len(fc.Routes))
	for i, fr := range fc.Routes {
		routes[i] = Route{Name: "file/" + fr.Name, Source: "file", Spec: fr.Spec}
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if err := s.checkFileRoutes(ctx, routes); err != nil {
		if !apperr.Is(err, apperr.Conflict) {
			return false, err // the store failed: try again at the next poll
		}
		s.mu.Lock()
		s.refusedMod, s.refusedSize = fi.ModTime(), fi.Size()
		s.mu.Unlock()
		s.log.Error("gateway config file refused; the previous file routes stay", logging.KeyErr, err)
		s.auditSystem(ctx, "gateway.config.refused", map[string]any{"file": s.d.ConfigFile, "reason": err.Error()})
		return false, err
	}
	if s.afterFileCheck != nil {
		s.afterFileCheck()
	}
	s.mu.Lock()
	s.fileRoutes, s.fileMod, s.fileSize = routes, fi.ModTime(), fi.Size()
	s.mu.Unlock()
	return true, nil
}

// Reload rebuilds the gateway's table from the config file's routes and
// the stored ones.
func (s *Service) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gen int64
	if err := s.d.DB.QueryRow(ctx, "SELECT generation FROM gateway_state WHERE id = 1").Scan(&gen); err != nil {
		return fmt.Errorf("read gateway generation: %w", err)
	}
	stored, err := s.list(ctx, s.d.DB, "", nil)
	if err != nil {
		return err
	}
	routes := slices.Clone(s.fileRoutes)
	for _, sr := range stored {
		rt := sr.Route
		rt.Name = sr.Scope.key(rt.Name)
		routes = append(routes, rt)
	}
	if err := s.d.Gateway.Load(ctx, routes); err != nil {
		return err
	}
	s.generation = gen
	return nil
}

// Run follows changes (stored routes changed by any replica, the config
// file) and prunes old security events until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.d.Poll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		reload := false
		if s.d.ConfigFile != "" {
			changed, err := s.readFile(ctx)
			if err != nil && !apperr.Is(err, apperr.Conflict) { // a clash is logged by readFile
				s.log.Error("gateway config not reloaded; the previous routes stay", logging.KeyErr, err)
			} else if changed {
				reload = true
				s.auditSystem(ctx, "gateway.config.reload", map[string]any{"file": s.d.ConfigFile, "routes": len(s.fileRoutes)})
			}
		}
		var gen int64
		if err := s.d.DB.QueryRow(ctx, "SELECT generation FROM gateway_state WHERE id = 1").Scan(&gen); err == nil {
			s.mu.Lock()
			reload = reload || gen != s.generation
			s.mu.Unlock()
		}
		if reload {
			if err := s.Reload(ctx); err != nil {
				s.log.Error("gateway reload failed; the previous routes stay", logging.KeyErr, err)
			}
		}
		if now := s.d.Now(); now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			if _, err := s.d.DB.Exec(ctx, "DELETE FROM gateway_events WHERE at < ?", store.Time(now.Add(-s.d.EventRetention))); err != nil {
				s.log.Warn("prune gateway events", logging.KeyErr, err)
			}
		}
	}
}

func (s *Service) auditSystem(ctx context.Context, action string, details map[string]any) {
	if err := s.d.Audit.Append(ctx, audit.Record{Action: action, ActorName: "system", Target: audit.Target{Type: "gateway", ID: "config"}, Details: details}); err != nil {
		s.log.Error("audit "+action, logging.KeyErr, err)
	}
}

const selectRoute = `SELECT id, org_id, project_id, org_name, project_name, name, spec, created_at, updated_at, created_by FROM gateway_routes`

func (s *Service) list(ctx context.Context, q store.Querier, where string, args []any) ([]StoredRoute, error) {
	rows, err := q.Query(ctx, selectRoute+where+" ORDER BY org_name, project_name, name", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredRoute
	for rows.Next() {
		var (
			sr   StoredRoute
			spec string
		)
		if err := rows.Scan(&sr.ID, &sr.Scope.OrgID, &sr.Scope.ProjectID, &sr.Scope.OrgName, &sr.Scope.ProjectName, &sr.Name, &spec,
			store.TimeDest(&sr.CreatedAt), store.TimeDest(&sr.UpdatedAt), &sr.CreatedBy); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(spec), &sr.Spec); err != nil {
			return nil, fmt.Errorf("route %d: stored spec: %w", sr.ID, err)
		}
		sr.OrgID, sr.ProjectID, sr.Source = sr.Scope.OrgID, sr.Scope.ProjectID, "api"
		out = append(out, sr)
	}
	return out, rows.Err()
}

// List returns a scope's stored routes (every stored route for all).
func (s *Service) List(ctx context.Context, sc Scope, all bool) ([]StoredRoute, error) {
	if all {
		return s.list(ctx, s.d.DB, "", nil)
	}
	return s.list(ctx, s.d.DB, " WHERE project_id = ?", []any{sc.ProjectID})
}

// FileRoutes returns the config file's routes.
func (s *Service) FileRoutes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.fileRoutes)
}

// Get returns a scope's route by name.
func (s *Service) Get(ctx context.Context, sc Scope, name string) (StoredRoute, error) {
	rs, err := s.list(ctx, s.d.DB, " WHERE project_id = ? AND name = ?", []any{sc.ProjectID, name})
	if err != nil {
		return StoredRoute{}, err
	}
	if len(rs) == 0 {
		return StoredRoute{}, apperr.E(apperr.NotFound, "route %q not found in %s", truncate(name, 64), sc)
	}
	return rs[0], nil
}

// Put creates or replaces a scope's route, audits it and reloads the
// gateway. A project's routes must name a host (the catch-all belongs to
// the site), and a host belongs to one owner: a project cannot add paths
// under a host another project or the site uses.
func (s *Service) Put(ctx context.Context, sc Scope, name string, spec Spec) (StoredRoute, bool, error) {
	if err := ValidateName(name); err != nil {
		return StoredRoute{}, false, err
	}
	spec, err := spec.Normalize()
	if err != nil {
		return StoredRoute{}, false, err
	}
	if err := s.d.Gateway.egress.checkBackends(spec.Backends); err != nil {
		return StoredRoute{}, false, err
	}
	if sc.ProjectID != 0 && spec.Host == "" {
		return StoredRoute{}, false, apperr.InvalidField("host", "a project's route must name its host; routes for any host are site routes")
	}
	if err := checkWildcardDepth(sc, spec.Host); err != nil {
		return StoredRoute{}, false, err
	}
	s.claimMu.Lock()
	claiming := true
	unclaim := func() {
		if claiming {
			claiming = false
			s.claimMu.Unlock()
		}
	}
	defer unclaim()
	for _, fr := range s.FileRoutes() {
		if sc.ProjectID != 0 && hostsConflict(fr.Spec.Host, spec.Host) {
			return StoredRoute{}, false, errHostTaken(spec.Host)
		}
		if sc.ProjectID == 0 && fr.Spec.Host == spec.Host && fr.Spec.Path == spec.Path {
			return StoredRoute{}, false, &apperr.Error{Kind: apperr.Conflict, Field: "host",
				Msg: fmt.Sprintf("host %q path %s is served by route %s of the gateway config file", spec.Host, fr.Spec.Path, fr.Name)}
		}
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return StoredRoute{}, false, err
	}
	var (
		out     StoredRoute
		created bool
	)
	err = s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := lockHost(ctx, tx, spec.Host); err != nil {
			return err
		}
		if taken, err := s.hostTaken(ctx, tx, sc.ProjectID, spec.Host); err != nil {
			return err
		} else if taken {
			return errHostTaken(spec.Host)
		}
		prev, err := s.list(ctx, tx, " WHERE project_id = ? AND name = ?", []any{sc.ProjectID, name})
		if err != nil {
			return err
		}
		now := s.d.Now()
		actor := reqActor(ctx)
		details := map[string]any{"host": spec.Host, "path": spec.Path, "backends": len(spec.Backends), "waf_mode": string(spec.WAF.Mode),
			"paranoia": spec.WAF.Paranoia, "auth": spec.Auth, "scope": sc.String()}
		var id int64
		if len(prev) == 0 {
			created = true
			err = tx.QueryRow(ctx, `INSERT INTO gateway_routes (org_id, project_id, org_name, project_name, name, host, path, spec, created_at, updated_at, created_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, sc.OrgID, sc.ProjectID, sc.OrgName, sc.ProjectName, name,
				spec.Host, spec.Path, string(specJSON), store.Time(now), store.Time(now), actor).Scan(&id)
		} else {
			id = prev[0].ID
			_, err = tx.Exec(ctx, "UPDATE gateway_routes SET host = ?, path = ?, spec = ?, updated_at = ? WHERE id = ?",
				spec.Host, spec.Path, string(specJSON), store.Time(now), id)
		}
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "path", Msg: fmt.Sprintf("another route serves host %q path %s", spec.Host, spec.Path)}
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE gateway_state SET generation = generation + 1 WHERE id = 1"); err != nil {
			return err
		}
		target := audit.Target{Type: "gateway_route", ID: strconv.FormatInt(id, 10), Name: sc.key(name)}
		action := "gateway.route.create"
		if !created {
			action = "gateway.route.update"
			old := prev[0].Spec
			if old.WAF.Mode != spec.WAF.Mode || old.WAF.Paranoia != spec.WAF.Paranoia {
				if err := s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "gateway.route.waf", OrgID: sc.OrgID, Target: target,
					Details: map[string]any{"mode_from": string(old.WAF.Mode), "mode_to": string(spec.WAF.Mode),
						"paranoia_from": old.WAF.Paranoia, "paranoia_to": spec.WAF.Paranoia}}); err != nil {
					return err
				}
			}
		}
		if err := s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: sc.OrgID, Target: target, Details: details}); err != nil {
			return err
		}
		rs, err := s.list(ctx, tx, " WHERE id = ?", []any{id})
		if err != nil || len(rs) == 0 {
			return errors.Join(err, errors.New("route vanished"))
		}
		out = rs[0]
		// The table must still load (a WAF that compiles, no clash with
		// the config file): try it before committing.
		return s.tryLoad(ctx, tx, sc.key(name), spec.Host)
	})
	unclaim()
	// Reload whatever happened: tryLoad may have loaded a table the
	// transaction then did not commit.
	if rerr := s.Reload(ctx); rerr != nil {
		s.log.Error("gateway reload after route change", logging.KeyErr, rerr)
	}
	if err != nil {
		return StoredRoute{}, false, err
	}
	return out, created, nil
}

// checkFileRoutes reports the first clash of config file routes with
// stored routes: a host (or wildcard over it) a project holds, or a site
// route's host and path. The error is for the operator's log and audit.
func (s *Service) checkFileRoutes(ctx context.Context, routes []Route) error {
	for _, fr := range routes {
		taken, err := s.hostTaken(ctx, s.d.DB, 0, fr.Spec.Host)
		if err != nil {
			return err
		}
		if taken {
			return apperr.E(apperr.Conflict, "config file route %s: host %q (or a name under its wildcard) belongs to a project's routes", fr.Name, fr.Spec.Host)
		}
		var n int
		if err := s.d.DB.QueryRow(ctx, "SELECT COUNT(*) FROM gateway_routes WHERE project_id = 0 AND host = ? AND path = ?", fr.Spec.Host, fr.Spec.Path).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.E(apperr.Conflict, "config file route %s: a stored site route serves host %q path %s", fr.Name, fr.Spec.Host, fr.Spec.Path)
		}
	}
	return nil
}

// tryLoad loads the table as tx sees it into the gateway; the caller's
// commit then makes it durable (Reload runs again after it). key is the
// changed route's: only its own faults are shown, never another owner's
// route.
func (s *Service) tryLoad(ctx context.Context, tx *store.Tx, key, host string) error {
	stored, err := s.list(ctx, tx, "", nil)
	if err != nil {
		return err
	}
	routes := s.FileRoutes()
	for _, sr := range stored {
		rt := sr.Route
		rt.Name = sr.Scope.key(rt.Name)
		routes = append(routes, rt)
	}
	if err := s.d.Gateway.Load(ctx, routes); err != nil {
		if strings.HasPrefix(err.Error(), "route "+key+": ") {
			return apperr.Wrap(err, apperr.Invalid, "the gateway cannot serve this route: "+strings.TrimPrefix(err.Error(), "route "+key+": "))
		}
		s.log.Error("gateway table does not load with a route change", "route", key, logging.KeyErr, err)
		return errHostTaken(host)
	}
	return nil
}

// Delete removes a scope's route.
func (s *Service) Delete(ctx context.Context, sc Scope, name string) error {
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		prev, err := s.list(ctx, tx, " WHERE project_id = ? AND name = ?", []any{sc.ProjectID, name})
		if err != nil {
			return err
		}
		if len(prev) == 0 {
			return apperr.E(apperr.NotFound, "route %q not found in %s", truncate(name, 64), sc)
		}
		return s.deleteTx(ctx, tx, prev[0], "")
	})
	if err != nil {
		return err
	}
	if err := s.Reload(ctx); err != nil {
		s.log.Error("gateway reload after route removal", logging.KeyErr, err)
	}
	return nil
}

// DeleteOwnerRoutes removes, inside tx, the routes of a project being
// deleted (projectID set) or of every project of an org being deleted
// (projectID 0): each removal is audited with reason, and the generation
// bump makes every replica reload once tx commits. It is the identity
// service's delete hook (identity.DeleteHook).
func (s *Service) DeleteOwnerRoutes(ctx context.Context, tx *store.Tx, orgID, projectID int64, reason string) error {
	if orgID == 0 {
		return nil
	}
	where, args := " WHERE org_id = ? AND project_id <> 0", []any{orgID}
	if projectID != 0 {
		where, args = " WHERE org_id = ? AND project_id = ?", []any{orgID, projectID}
	}
	rs, err := s.list(ctx, tx, where, args)
	if err != nil || len(rs) == 0 {
		return err
	}
	for _, sr := range rs {
		if err := s.deleteTx(ctx, tx, sr, reason); err != nil {
			return err
		}
	}
	return nil
}

// deleteTx removes a stored route, bumps the routes generation and audits
// the removal (with reason when set).
func (s *Service) deleteTx(ctx context.Context, tx *store.Tx, sr StoredRoute, reason string) error {
	if _, err := tx.Exec(ctx, "DELETE FROM gateway_routes WHERE id = ?", sr.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "UPDATE gateway_state SET generation = generation + 1 WHERE id = 1"); err != nil {
		return err
	}
	details := map[string]any{"host": sr.Spec.Host, "path": sr.Spec.Path, "scope": sr.Scope.String()}
	if reason != "" {
		details["reason"] = reason
	}
	return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "gateway.route.delete", OrgID: sr.Scope.OrgID,
		Target:  audit.Target{Type: "gateway_route", ID: strconv.FormatInt(sr.ID, 10), Name: sr.Scope.key(sr.Name)},
		Details: details})
}

// DeleteByID removes any stored route, a project's or the site's, by its
// id (site administrators).
func (s *Service) DeleteByID(ctx context.Context, id int64) error {
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		rs, err := s.list(ctx, tx, " WHERE id = ?", []any{id})
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return apperr.E(apperr.NotFound, "route %d not found", id)
		}
		return s.deleteTx(ctx, tx, rs[0], "site admin")
	})
	if err != nil {
		return err
	}
	if err := s.Reload(ctx); err != nil {
		s.log.Error("gateway reload after route removal", logging.KeyErr, err)
	}
	return nil
}
