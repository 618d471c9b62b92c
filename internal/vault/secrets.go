package vault

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

// Value formats: a raw value is any bytes; a JSON value is a JSON object
// of keys and values (what Vault's KV API writes).
const (
	FormatRaw  = "raw"
	FormatJSON = "json"
)

// Secret is a secret's metadata; never its value.
type Secret struct {
	ID             int64
	Ref            Ref
	Owner          string
	Description    string
	Generator      string
	CurrentVersion int
	CreatedAt      time.Time
	UpdatedAt      time.Time
	RotatedAt      time.Time
	ExpiresAt      time.Time
	LeakedAt       time.Time
	uid            string
	kvCustom       string // the path's KV custom metadata as JSON, when loaded for a read
	orgID          int64
	projectID      int64
}

// OrgID is the id of the org owning the secret.
func (s Secret) OrgID() int64 { return s.orgID }

// ProjectID is the id of the project owning the secret (0 at org level).
func (s Secret) ProjectID() int64 { return s.projectID }

// Expired reports whether the secret's expiry date has passed.
func (s Secret) Expired(now time.Time) bool { return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) }

// Version is one version of a secret's value; never the value.
type Version struct {
	Version    int
	Format     string
	CreatedAt  time.Time
	CreatedBy  string
	Reason     string
	DeletedAt  time.Time
	Destroyed  bool
	LeakedAt   time.Time
	KEKVersion int
	// KVDeleteAt is when the delete_version_after of the path's KV
	// metadata deletes the version for the Vault-compatible API (zero:
	// never): set when the version is written or undeleted there.
	// Rampart's own reads ignore it.
	KVDeleteAt time.Time
}

// Readable reports whether the version's value can be read.
func (v Version) Readable() bool { return v.DeletedAt.IsZero() && !v.Destroyed }

// kvDeletionTime is the version's deletion_time in the Vault-compatible
// API: the earlier of its deletion and its KVDeleteAt (which may be
// ahead), zero when neither is set.
func (v Version) kvDeletionTime() time.Time {
	if v.KVDeleteAt.IsZero() || (!v.DeletedAt.IsZero() && v.DeletedAt.Before(v.KVDeleteAt)) {
		return v.DeletedAt
	}
	return v.KVDeleteAt
}

// kvView is the version as the Vault-compatible API sees it at now: once
// its KVDeleteAt has passed, deleted at that time (Vault reads a version
// as deleted once its deletion_time is before now).
func (v Version) kvView(now time.Time) Version {
	if !v.KVDeleteAt.IsZero() && v.KVDeleteAt.Before(now) && (v.DeletedAt.IsZero() || v.KVDeleteAt.Before(v.DeletedAt)) {
		v.DeletedAt = v.KVDeleteAt
	}
	return v
}

// Write is a new value for a secret.
type Write struct {
	Value  Value
	Format string // FormatRaw when empty
	// Description, ExpiresAt and Generator change the metadata when set.
	Description *string
	ExpiresAt   *time.Time
	Generator   *string
	// CAS, when set, makes the write succeed only while the current version
	// is *CAS (0: only if the secret does not exist yet).
	CAS *int
}

// write reasons, recorded with each version.
const (
	reasonSet      = "set"
	reasonRotate   = "rotate"
	reasonLeak     = "leak"
	reasonRollback = "rollback"
)

func secretTarget(sec Secret) audit.Target {
	return audit.Target{Type: "secret", ID: strconv.FormatInt(sec.ID, 10), Name: sec.Ref.String()}
}

func actor(ctx context.Context) string {
	if n := reqinfo.From(ctx).ActorName; n != "" {
		return n
	}
	return "system"
}

const secretColumns = `s.id, s.uid, s.org_id, s.project_id, s.env, s.name, s.owner, s.description, s.generator,
	s.current_version, s.created_at, s.updated_at, s.rotated_at, s.expires_at, s.leaked_at`

const selectSecret = "SELECT " + secretColumns + " FROM vault_secrets s"

func scanSecret(r interface{ Scan(...any) error }, sc Scope, more ...any) (Secret, error) {
	var (
		sec       Secret
		projectID *int64
	)
	err := r.Scan(append([]any{&sec.ID, &sec.uid, &sec.orgID, &projectID, &sec.Ref.Env, &sec.Ref.Name, &sec.Owner, &sec.Description,
		&sec.Generator, &sec.CurrentVersion, store.TimeDest(&sec.CreatedAt), store.TimeDest(&sec.UpdatedAt),
		store.TimeDest(&sec.RotatedAt), store.TimeDest(&sec.ExpiresAt), store.TimeDest(&sec.LeakedAt)}, more...)...)
	if projectID != nil {
		sec.projectID = *projectID
	}
	sec.Ref.Org, sec.Ref.Project = sc.Org, sc.Project
	return sec, err
}

const selectVersion = `SELECT version, format, created_at, created_by, reason, deleted_at, destroyed, leaked_at, kek_version, kv_delete_at
	FROM vault_versions`

func scanVersion(r interface{ Scan(...any) error }) (Version, error) {
	var v Version
	err := r.Scan(&v.Version, &v.Format, store.TimeDest(&v.CreatedAt), &v.CreatedBy, &v.Reason, store.TimeDest(&v.DeletedAt),
		&v.Destroyed, store.TimeDest(&v.LeakedAt), &v.KEKVersion, store.TimeDest(&v.KVDeleteAt))
	return v, err
}

func (s *Service) loadSecret(ctx context.Context, q store.Querier, p place, ref Ref) (Secret, error) {
	sec, err := scanSecret(q.QueryRow(ctx, selectSecret+" WHERE s.scope_key = ?", p.scopeKey(ref.Name)), ref.Scope)
	if apperr.Is(err, apperr.NotFound) {
		return Secret{}, apperr.E(apperr.NotFound, "secret %s not found", ref)
	}
	return sec, err
}

// Metadata returns a secret's metadata.
func (s *Service) Metadata(ctx context.Context, ref Ref) (Secret, error) {
	if err := ValidateName(ref.Name); err != nil {
		return Secret{}, err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return Secret{}, err
	}
	return s.loadSecret(ctx, s.db, p, ref)
}

// List returns the secrets directly in a scope (not those of its projects
// or environments), by name.
func (s *Service) List(ctx context.Context, sc Scope) ([]Secret, error) {
	p, err := s.resolve(ctx, sc)
	if err != nil {
		return nil, err
	}
	q := selectSecret + " WHERE s.org_id = ? AND s.env = ? AND "
	args := []any{p.org.ID, p.env}
	if p.project.ID == 0 {
		q += "s.project_id IS NULL"
	} else {
		q += "s.project_id = ?"
		args = append(args, p.project.ID)
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY s.name LIMIT "+strconv.Itoa(maxListResult), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		sec, err := scanSecret(rows, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

// Environments lists the environments of a project that hold secrets.
func (s *Service) Environments(ctx context.Context, sc Scope) ([]string, error) {
	p, err := s.resolve(ctx, Scope{Org: sc.Org, Project: sc.Project})
	if err != nil {
		return nil, err
	}
	if p.project.ID == 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, "SELECT DISTINCT env FROM vault_secrets WHERE project_id = ? AND env <> '' ORDER BY env", p.project.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// History lists a secret's versions, newest first.
func (s *Service) History(ctx context.Context, ref Ref) (Secret, []Version, error) {
	sec, err := s.Metadata(ctx, ref)
	if err != nil {
		return Secret{}, nil, err
	}
	rows, err := s.db.Query(ctx, selectVersion+" WHERE secret_id = ? ORDER BY version DESC", sec.ID)
	if err != nil {
		return Secret{}, nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return Secret{}, nil, err
		}
		out = append(out, v)
	}
	return sec, out, rows.Err()
}

// errStale makes a write start over: the secret changed between reading
// its current version and committing the next one.
var errStale = errors.New("vault: secret changed concurrently")

func validateWrite(w *Write) error {
	if w.Format == "" {
		w.Format = FormatRaw
	}
	switch w.Format {
	case FormatRaw:
	case FormatJSON:
		var obj map[string]any
		if err := json.Unmarshal(w.Value.b, &obj); err != nil || obj == nil {
			return apperr.InvalidField("data", "a JSON secret must be a JSON object")
		}
	default:
		return apperr.InvalidField("format", "format must be raw or json")
	}
	if w.Value.Len() == 0 {
		return apperr.InvalidField("value", "a secret value must not be empty")
	}
	if w.Value.Len() > MaxValue {
		return &apperr.Error{Kind: apperr.TooLarge, Field: "value", Msg: fmt.Sprintf("a secret value may have at most %d bytes", MaxValue)}
	}
	if w.Description != nil && len(*w.Description) > maxDescLen {
		return apperr.InvalidField("description", "a description may have at most %d characters", maxDescLen)
	}
	if w.Generator != nil && *w.Generator != "" {
		if _, err := ParseGenerator(*w.Generator); err != nil {
			return err
		}
	}
	if w.CAS != nil && *w.CAS < 0 {
		return apperr.InvalidField("cas", "cas must not be negative")
	}
	return nil
}

// Set writes a new version of a secret (creating the secret at version 1)
// and returns its metadata and the new version.
func (s *Service) Set(ctx context.Context, ref Ref, w Write) (Secret, Version, error) {
	return s.write(ctx, ref, w, reasonSet, 0)
}

// Rotate gives a secret a new value: the one given, or one made by the
// secret's generator when value is nil. It records the rotation, closes the
// secret's open leak alerts and, where the project asks for it, queues a
// rolling restart of its workloads.
func (s *Service) Rotate(ctx context.Context, ref Ref, value *Value) (Secret, Version, error) {
	return s.rotate(ctx, ref, value, reasonRotate)
}

func (s *Service) rotate(ctx context.Context, ref Ref, value *Value, reason string) (Secret, Version, error) {
	var w Write
	if value != nil {
		w.Value = *value
	} else {
		sec, err := s.Metadata(ctx, ref)
		if err != nil {
			return Secret{}, Version{}, err
		}
		if sec.Generator == "" {
			return Secret{}, Version{}, apperr.E(apperr.Invalid, "secret %s has no generator: give the new value", ref)
		}
		g, err := ParseGenerator(sec.Generator)
		if err != nil {
			return Secret{}, Version{}, err
		}
		if w.Value, err = g.Generate(); err != nil {
			return Secret{}, Version{}, err
		}
	}
	return s.write(ctx, ref, w, reason, 0)
}

// Rollback makes an earlier version's value current again, as a new
// version (history is never rewritten).
func (s *Service) Rollback(ctx context.Context, ref Ref, version int) (Secret, Version, error) {
	if version < 1 {
		return Secret{}, Version{}, apperr.InvalidField("version", "version must be a positive number")
	}
	sec, err := s.Metadata(ctx, ref)
	if err != nil {
		return Secret{}, Version{}, err
	}
	if version == sec.CurrentVersion {
		return Secret{}, Version{}, apperr.E(apperr.Conflict, "version %d of %s is already current", version, ref)
	}
	val, v, err := s.decryptVersion(ctx, sec, version)
	if err != nil {
		return Secret{}, Version{}, err
	}
	return s.write(ctx, ref, Write{Value: val, Format: v.Format}, reasonRollback, version)
}

func (s *Service) write(ctx context.Context, ref Ref, w Write, reason string, from int) (Secret, Version, error) {
	if err := ValidateName(ref.Name); err != nil {
		return Secret{}, Version{}, err
	}
	if err := validateWrite(&w); err != nil {
		return Secret{}, Version{}, err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return Secret{}, Version{}, err
	}
	fp := s.fingerprint(w.Value.b)
	for range 5 {
		sec, err := s.loadSecret(ctx, s.db, p, ref)
		isNew := apperr.Is(err, apperr.NotFound)
		if err != nil && !isNew {
			return Secret{}, Version{}, err
		}
		if isNew && reason != reasonSet {
			return Secret{}, Version{}, err
		}
		if w.CAS != nil && *w.CAS != sec.CurrentVersion {
			return Secret{}, Version{}, apperr.E(apperr.Conflict, "check-and-set: the current version of %s is %d, not %d", ref, sec.CurrentVersion, *w.CAS)
		}
		if sec.CurrentVersion >= s.maxVersions {
			// Past the wall only while old versions are being destroyed
			// (by hand, or by the path's max_versions).
			var live, keep int
			if err := s.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE((SELECT m.max_versions FROM vault_kv_metadata m WHERE m.scope_key = ?), 0)
				FROM vault_versions WHERE secret_id = ? AND destroyed = FALSE`, p.scopeKey(ref.Name), sec.ID).Scan(&live, &keep); err != nil {
				return Secret{}, Version{}, err
			}
			if live >= s.maxVersions && (keep <= 0 || keep > s.maxVersions) {
				return Secret{}, Version{}, apperr.E(apperr.Invalid, "%s has %d versions that are not destroyed, the most a secret keeps: destroy old ones "+
					"(or set max_versions in its KV metadata), or delete the secret and start again", ref, s.maxVersions)
			}
		}
		if isNew {
			if sec.uid, err = newUID(); err != nil {
				return Secret{}, Version{}, err
			}
			sec.Ref, sec.orgID, sec.projectID = ref, p.org.ID, p.project.ID
		}
		next := sec.CurrentVersion + 1
		sl, err := s.seal(ctx, w.Value.b, versionAAD(sec.uid, next))
		if err != nil {
			return Secret{}, Version{}, err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		ver := Version{Version: next, Format: w.Format, CreatedAt: now, CreatedBy: actor(ctx), Reason: reason, KEKVersion: sl.kekVersion}
		if from > 0 {
			ver.Reason = reason + " to " + strconv.Itoa(from)
		}
		err = s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
			return s.writeTx(ctx, tx, p, &sec, isNew, w, &ver, sl, fp)
		})
		if errors.Is(err, errStale) || (isNew && apperr.Is(err, apperr.Conflict)) {
			continue // someone else wrote first: seal again for the next version
		}
		if err != nil {
			return Secret{}, Version{}, err
		}
		if reason != reasonSet {
			s.nudge()
		}
		return sec, ver, nil
	}
	return Secret{}, Version{}, apperr.E(apperr.Conflict, "%s is being written by others; try again", ref)
}

func (s *Service) writeTx(ctx context.Context, tx *store.Tx, p place, sec *Secret, isNew bool, w Write, ver *Version, sl sealed, fp string) error {
	now := ver.CreatedAt
	rotation := ver.Reason != reasonSet
	if isNew {
		sec.Owner, sec.CreatedAt = actor(ctx), now
		if w.Description != nil {
			sec.Description = *w.Description
		}
		if w.Generator != nil {
			sec.Generator = *w.Generator
		}
		if w.ExpiresAt != nil {
			sec.ExpiresAt = w.ExpiresAt.UTC().Truncate(time.Microsecond)
		}
		err := tx.QueryRow(ctx, `INSERT INTO vault_secrets (uid, org_id, project_id, env, name, scope_key, owner, description, generator,
			current_version, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			sec.uid, p.org.ID, p.projectID(), p.env, sec.Ref.Name, p.scopeKey(sec.Ref.Name), sec.Owner, sec.Description,
			sec.Generator, ver.Version, store.Time(now), store.Time(now), store.Time(sec.ExpiresAt)).Scan(&sec.ID)
		if err != nil {
			return err
		}
	} else {
		if w.Description != nil {
			sec.Description = *w.Description
		}
		if w.Generator != nil {
			sec.Generator = *w.Generator
		}
		if w.ExpiresAt != nil {
			sec.ExpiresAt = w.ExpiresAt.UTC().Truncate(time.Microsecond)
		}
		if rotation {
			sec.RotatedAt = now
			sec.LeakedAt = time.Time{}
		}
		n, err := tx.Exec(ctx, `UPDATE vault_secrets SET current_version = ?, updated_at = ?, description = ?, generator = ?,
			expires_at = ?, rotated_at = ?, leaked_at = ? WHERE id = ? AND current_version = ?`,
			ver.Version, store.Time(now), sec.Description, sec.Generator, store.Time(sec.ExpiresAt), store.Time(sec.RotatedAt),
			store.Time(sec.LeakedAt), sec.ID, ver.Version-1)
		if err != nil {
			return err
		}
		if n == 0 {
			return errStale
		}
	}
	sec.CurrentVersion, sec.UpdatedAt = ver.Version, now
	// The path's KV metadata (which may come before the first version):
	// max_versions prunes, delete_version_after dates the new version's
	// deletion for the Vault-compatible API.
	var (
		keep     int
		afterSec int64
	)
	err := tx.QueryRow(ctx, "SELECT max_versions, delete_version_after FROM vault_kv_metadata WHERE scope_key = ?",
		p.scopeKey(sec.Ref.Name)).Scan(&keep, &afterSec)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	ver.KVDeleteAt = time.Time{}
	if afterSec > 0 {
		ver.KVDeleteAt = now.Add(time.Duration(afterSec) * time.Second)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vault_versions (secret_id, version, format, ciphertext, wrapped_dek, kek_version,
		fingerprint, created_at, created_by, reason, kv_delete_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sec.ID, ver.Version, ver.Format, sl.ciphertext, sl.wrapped, sl.kekVersion, fp, store.Time(now), ver.CreatedBy, ver.Reason,
		store.Time(ver.KVDeleteAt)); err != nil {
		return err
	}
	action := "vault.secret.write"
	details := map[string]any{"version": ver.Version, "format": ver.Format, "bytes": w.Value.Len()}
	if !isNew {
		if err := s.pruneTx(ctx, tx, *sec, ver.Version, keep, details); err != nil {
			return err
		}
	}
	if isNew {
		action = "vault.secret.create"
	}
	if rotation {
		action = "vault.secret.rotate"
		details["reason"] = ver.Reason
		n, err := tx.Exec(ctx, "UPDATE vault_leaks SET rotated_version = ?, resolved_at = ? WHERE secret_id = ? AND resolved_at IS NULL",
			ver.Version, store.Time(now), sec.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			details["leaks_resolved"] = n
		}
		if strings.HasPrefix(ver.Reason, reasonRollback) {
			action = "vault.secret.rollback"
		}
		if err := s.queueRestartTx(ctx, tx, *sec, ver.Version, now); err != nil {
			return err
		}
	}
	return s.audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: p.org.ID, Target: secretTarget(*sec), Details: details})
}

// pruneTx honours keep, the max_versions of the secret's KV metadata,
// after version latest was written: older versions beyond the limit are
// destroyed (values and fingerprints wiped, the rows kept), noted in the
// write's audit details.
func (s *Service) pruneTx(ctx context.Context, tx *store.Tx, sec Secret, latest, keep int, details map[string]any) error {
	if keep <= 0 || latest <= keep {
		return nil
	}
	n, err := tx.Exec(ctx, `UPDATE vault_versions SET destroyed = TRUE, ciphertext = NULL, wrapped_dek = NULL, fingerprint = NULL
		WHERE secret_id = ? AND version <= ? AND destroyed = FALSE`, sec.ID, latest-keep)
	if err != nil {
		return err
	}
	if n > 0 {
		details["max_versions"] = keep
		details["destroyed_versions"] = n
		details["destroyed_through"] = latest - keep
	}
	return nil
}

// queueRestartTx records a rotation event for the project's workloads
// when the project asks for rolling restarts (delivered by Run).
func (s *Service) queueRestartTx(ctx context.Context, tx *store.Tx, sec Secret, version int, now time.Time) error {
	if sec.projectID == 0 || s.restarter == nil {
		return nil
	}
	var restart bool
	err := tx.QueryRow(ctx, "SELECT restart_on_rotate FROM vault_project_settings WHERE project_id = ?", sec.projectID).Scan(&restart)
	if apperr.Is(err, apperr.NotFound) || (err == nil && !restart) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO vault_events (kind, secret_id, ref, version, created_at) VALUES ('rotated', ?, ?, ?, ?)",
		sec.ID, sec.Ref.String(), version, store.Time(now))
	return err
}

// decryptVersion opens a version's value (version 0: the current one)
// without any access check: callers check first.
func (s *Service) decryptVersion(ctx context.Context, sec Secret, version int) (Value, Version, error) {
	v, sl, err := s.loadVersion(ctx, sec, version)
	if err != nil {
		return Value{}, Version{}, err
	}
	return s.openVersion(ctx, sec, v, sl)
}

// loadVersion loads a version (0: the current one) with its sealed value.
func (s *Service) loadVersion(ctx context.Context, sec Secret, version int) (Version, sealed, error) {
	if version == 0 {
		version = sec.CurrentVersion
	}
	var sl sealed
	v, err := scanVersionSealed(s.db.QueryRow(ctx, `SELECT version, format, created_at, created_by, reason, deleted_at, destroyed,
		leaked_at, kek_version, kv_delete_at, ciphertext, wrapped_dek FROM vault_versions WHERE secret_id = ? AND version = ?`, sec.ID, version), &sl)
	if apperr.Is(err, apperr.NotFound) {
		return Version{}, sealed{}, apperr.E(apperr.NotFound, "%s has no version %d", sec.Ref, version)
	}
	return v, sl, err
}

// openVersion decrypts a loaded version, unless it is deleted or destroyed.
func (s *Service) openVersion(ctx context.Context, sec Secret, v Version, sl sealed) (Value, Version, error) {
	switch {
	case v.Destroyed:
		return Value{}, v, apperr.E(apperr.NotFound, "version %d of %s was destroyed", v.Version, sec.Ref)
	case !v.DeletedAt.IsZero():
		return Value{}, v, apperr.E(apperr.NotFound, "version %d of %s is deleted (undelete it to read it)", v.Version, sec.Ref)
	}
	pt, err := s.open(ctx, sl, versionAAD(sec.uid, v.Version))
	if err != nil {
		return Value{}, v, fmt.Errorf("decrypt version %d of %s: %w", v.Version, sec.Ref, err)
	}
	return Value{b: pt}, v, nil
}

func scanVersionSealed(r interface{ Scan(...any) error }, sl *sealed) (Version, error) {
	var v Version
	err := r.Scan(&v.Version, &v.Format, store.TimeDest(&v.CreatedAt), &v.CreatedBy, &v.Reason, store.TimeDest(&v.DeletedAt),
		&v.Destroyed, store.TimeDest(&v.LeakedAt), &v.KEKVersion, store.TimeDest(&v.KVDeleteAt), &sl.ciphertext, &sl.wrapped)
	sl.kekVersion = v.KEKVersion
	return v, err
}

// SetVersionsDeleted soft-deletes (deleted true) or restores versions of
// a secret, as Vault's KV delete and undelete do. Destroyed versions stay
// destroyed. Restoring also restores the versions the path's
// delete_version_after deleted for the Vault-compatible API, and dates
// their next such deletion from now, as Vault's undelete does.
func (s *Service) SetVersionsDeleted(ctx context.Context, ref Ref, versions []int, deleted bool) error {
	sec, err := s.Metadata(ctx, ref)
	if err != nil {
		return err
	}
	if len(versions) == 0 || len(versions) > 1000 {
		return apperr.InvalidField("versions", "name between 1 and 1000 versions")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	action := "vault.secret.undelete"
	if deleted {
		action = "vault.secret.delete"
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		var kvDeleteAt time.Time
		if !deleted {
			var afterSec int64
			err := tx.QueryRow(ctx, `SELECT m.delete_version_after FROM vault_kv_metadata m JOIN vault_secrets s ON s.scope_key = m.scope_key
				WHERE s.id = ?`, sec.ID).Scan(&afterSec)
			if err != nil && !apperr.Is(err, apperr.NotFound) {
				return err
			}
			if afterSec > 0 {
				kvDeleteAt = now.Add(time.Duration(afterSec) * time.Second)
			}
		}
		var changed []int
		for _, v := range versions {
			var (
				n   int64
				err error
			)
			if deleted {
				n, err = tx.Exec(ctx, "UPDATE vault_versions SET deleted_at = ? WHERE secret_id = ? AND version = ? AND destroyed = FALSE AND deleted_at IS NULL",
					store.Time(now), sec.ID, v)
			} else {
				n, err = tx.Exec(ctx, `UPDATE vault_versions SET deleted_at = NULL, kv_delete_at = ? WHERE secret_id = ? AND version = ? AND destroyed = FALSE
					AND (deleted_at IS NOT NULL OR kv_delete_at < ?)`, store.Time(kvDeleteAt), sec.ID, v, store.Time(now))
			}
			if err != nil {
				return err
			}
			if n > 0 {
				changed = append(changed, v)
			}
		}
		if len(changed) == 0 {
			return nil
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: sec.orgID, Target: secretTarget(sec),
			Details: map[string]any{"versions": changed}})
	})
}

// DestroyVersions wipes versions' ciphertexts for good.
func (s *Service) DestroyVersions(ctx context.Context, ref Ref, versions []int) error {
	sec, err := s.Metadata(ctx, ref)
	if err != nil {
		return err
	}
	if len(versions) == 0 || len(versions) > 1000 {
		return apperr.InvalidField("versions", "name between 1 and 1000 versions")
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		var changed []int
		for _, v := range versions {
			n, err := tx.Exec(ctx, `UPDATE vault_versions SET destroyed = TRUE, ciphertext = NULL, wrapped_dek = NULL, fingerprint = NULL
				WHERE secret_id = ? AND version = ? AND destroyed = FALSE`, sec.ID, v)
			if err != nil {
				return err
			}
			if n > 0 {
				changed = append(changed, v)
			}
		}
		if len(changed) == 0 {
			return nil
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.secret.destroy", OrgID: sec.orgID, Target: secretTarget(sec),
			Details: map[string]any{"versions": changed}})
	})
}

// Delete removes a secret with every version, and its path's KV metadata.
func (s *Service) Delete(ctx context.Context, ref Ref) error {
	sec, err := s.Metadata(ctx, ref)
	if err != nil {
		return err
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := dropKVMetadataTx(ctx, tx, sec.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM vault_secrets WHERE id = ?", sec.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.secret.delete_all", OrgID: sec.orgID, Target: secretTarget(sec),
			Details: map[string]any{"versions": sec.CurrentVersion}})
	})
}

// Generator makes new values for rotations: random:LENGTH[:ALPHABET].
type Generator struct {
	Length   int
	Alphabet string
}

var alphabets = map[string]string{
	"alnum":     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"hex":       "0123456789abcdef",
	"base64url": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
}

// ParseGenerator parses random:LENGTH[:alnum|hex|base64url].
func ParseGenerator(spec string) (Generator, error) {
	bad := apperr.InvalidField("generator", "a generator is random:LENGTH[:alnum|hex|base64url] with LENGTH from 16 to 256")
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "random" {
		return Generator{}, bad
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 16 || n > 256 {
		return Generator{}, bad
	}
	g := Generator{Length: n, Alphabet: "alnum"}
	if len(parts) == 3 {
		if _, ok := alphabets[parts[2]]; !ok {
			return Generator{}, bad
		}
		g.Alphabet = parts[2]
	}
	return g, nil
}

// Generate makes a new random value.
func (g Generator) Generate() (Value, error) {
	al := alphabets[g.Alphabet]
	b := make([]byte, g.Length)
	max := big.NewInt(int64(len(al)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return Value{}, err
		}
		b[i] = al[n.Int64()]
	}
	return Value{b: b}, nil
}
