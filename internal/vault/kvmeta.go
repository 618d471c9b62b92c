package vault

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Limits on a path's custom metadata, Vault's own.
const (
	MaxCustomMetadataKeys     = 64
	MaxCustomMetadataKeyLen   = 128 // bytes
	MaxCustomMetadataValueLen = 512 // bytes
)

// KVMetadata is the Vault KV metadata of a secret's path: what Vault's
// KV v2 keeps besides versions. A path may have it before its secret has
// a first version.
type KVMetadata struct {
	// Custom is custom_metadata: nil when none.
	Custom map[string]string
	// MaxVersions is how many versions the Vault-compatible API keeps
	// readable (0: no limit of its own).
	MaxVersions int
	// CASRequired makes the Vault-compatible API refuse writes without
	// options.cas.
	CASRequired bool
	// DeleteVersionAfter (whole seconds; 0: never) dates the deletion of
	// each version written (or undeleted) from then on, for the
	// Vault-compatible API only: see Version.KVDeleteAt.
	DeleteVersionAfter time.Duration
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// KVMetadataChange changes a path's KV metadata: only what is set.
type KVMetadataChange struct {
	// Custom replaces custom_metadata (an empty map clears it).
	Custom map[string]string
	// Patch merges into custom_metadata: a nil value removes its key.
	Patch       map[string]*string
	MaxVersions *int
	CASRequired *bool
	// DeleteVersionAfter is truncated to whole seconds, as Vault does; 0
	// clears it.
	DeleteVersionAfter *time.Duration
	// MustExist refuses the change (NotFound) when the path has neither
	// metadata nor a secret, as Vault's PATCH does.
	MustExist bool
}

func validateCustomMetadata(m map[string]string) error {
	if len(m) > MaxCustomMetadataKeys {
		return apperr.InvalidField("custom_metadata", "custom_metadata may have at most %d keys, not %d", MaxCustomMetadataKeys, len(m))
	}
	for k, v := range m {
		if len(k) == 0 || len(k) > MaxCustomMetadataKeyLen || !utf8.ValidString(k) {
			return apperr.InvalidField("custom_metadata", "custom_metadata key %q: a key has 1 to %d bytes of UTF-8", clip(k), MaxCustomMetadataKeyLen)
		}
		if len(v) == 0 || len(v) > MaxCustomMetadataValueLen || !utf8.ValidString(v) {
			return apperr.InvalidField("custom_metadata", "custom_metadata value of %q: a value has 1 to %d bytes of UTF-8", clip(k), MaxCustomMetadataValueLen)
		}
	}
	return nil
}

const selectKVMetadata = `SELECT custom_metadata, max_versions, cas_required, delete_version_after, created_at, updated_at
	FROM vault_kv_metadata WHERE scope_key = ?`

func scanKVMetadata(r interface{ Scan(...any) error }) (KVMetadata, error) {
	var (
		m        KVMetadata
		custom   string
		afterSec int64
	)
	if err := r.Scan(&custom, &m.MaxVersions, &m.CASRequired, &afterSec, store.TimeDest(&m.CreatedAt), store.TimeDest(&m.UpdatedAt)); err != nil {
		return KVMetadata{}, err
	}
	m.DeleteVersionAfter = time.Duration(afterSec) * time.Second
	var err error
	m.Custom, err = parseCustom(custom)
	return m, err
}

// parseCustom reads stored custom metadata ("" or {}: none).
func parseCustom(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var c map[string]string
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "stored custom metadata is malformed")
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}

// KVMetadataOf returns the KV metadata of a secret's path; NotFound when
// it has none (the defaults then apply).
func (s *Service) KVMetadataOf(ctx context.Context, ref Ref) (KVMetadata, error) {
	if err := ValidateName(ref.Name); err != nil {
		return KVMetadata{}, err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return KVMetadata{}, err
	}
	return s.kvMetadataAt(ctx, s.db, p, ref)
}

func (s *Service) kvMetadataAt(ctx context.Context, q store.Querier, p place, ref Ref) (KVMetadata, error) {
	m, err := scanKVMetadata(q.QueryRow(ctx, selectKVMetadata, p.scopeKey(ref.Name)))
	if apperr.Is(err, apperr.NotFound) {
		return KVMetadata{}, apperr.E(apperr.NotFound, "%s has no KV metadata", ref)
	}
	return m, err
}

// SetKVMetadata changes the KV metadata of a secret's path, which need
// not hold a secret yet, and audits the change (vault.secret.metadata,
// with the custom metadata's keys, never its values).
func (s *Service) SetKVMetadata(ctx context.Context, ref Ref, ch KVMetadataChange) (KVMetadata, error) {
	if err := ValidateName(ref.Name); err != nil {
		return KVMetadata{}, err
	}
	if ch.MaxVersions != nil && *ch.MaxVersions < 0 {
		return KVMetadata{}, apperr.InvalidField("max_versions", "max_versions must not be negative")
	}
	if ch.DeleteVersionAfter != nil && *ch.DeleteVersionAfter < 0 {
		return KVMetadata{}, apperr.InvalidField("delete_version_after", "delete_version_after must not be negative")
	}
	if ch.Custom != nil {
		if err := validateCustomMetadata(ch.Custom); err != nil {
			return KVMetadata{}, err
		}
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return KVMetadata{}, err
	}
	key := p.scopeKey(ref.Name)
	var out KVMetadata
	err = s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		now := store.Time(s.now())
		// Lock the row (PostgreSQL) before reading it: patches from
		// several replicas then apply one after the other.
		n, err := tx.Exec(ctx, "UPDATE vault_kv_metadata SET updated_at = updated_at WHERE scope_key = ?", key)
		if err != nil {
			return err
		}
		var (
			m      KVMetadata
			target = audit.Target{Type: "secret", Name: ref.String()}
			secID  int64
		)
		err = tx.QueryRow(ctx, "SELECT id FROM vault_secrets WHERE scope_key = ?", key).Scan(&secID)
		switch {
		case err == nil:
			target.ID = itoa(secID)
		case !apperr.Is(err, apperr.NotFound):
			return err
		case n == 0 && ch.MustExist:
			return apperr.E(apperr.NotFound, "no secret and no metadata at %s", ref)
		}
		if n > 0 {
			if m, err = scanKVMetadata(tx.QueryRow(ctx, selectKVMetadata, key)); err != nil {
				return err
			}
		}
		if ch.Custom != nil {
			m.Custom = ch.Custom
		}
		if ch.Patch != nil {
			merged := map[string]string{}
			for k, v := range m.Custom {
				merged[k] = v
			}
			for k, v := range ch.Patch {
				if v == nil {
					delete(merged, k)
				} else {
					merged[k] = *v
				}
			}
			if err := validateCustomMetadata(merged); err != nil {
				return err
			}
			m.Custom = merged
		}
		if len(m.Custom) == 0 {
			m.Custom = nil
		}
		if ch.MaxVersions != nil {
			m.MaxVersions = *ch.MaxVersions
		}
		if ch.CASRequired != nil {
			m.CASRequired = *ch.CASRequired
		}
		if ch.DeleteVersionAfter != nil {
			m.DeleteVersionAfter = ch.DeleteVersionAfter.Truncate(time.Second)
		}
		afterSec := int64(m.DeleteVersionAfter / time.Second)
		custom := ""
		if m.Custom != nil {
			b, err := json.Marshal(m.Custom)
			if err != nil {
				return err
			}
			custom = string(b)
		}
		if n == 0 {
			_, err = tx.Exec(ctx, `INSERT INTO vault_kv_metadata (scope_key, org_id, project_id, custom_metadata, max_versions, cas_required,
				delete_version_after, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key, p.org.ID, p.projectID(), custom, m.MaxVersions, m.CASRequired, afterSec, now, now)
		} else {
			_, err = tx.Exec(ctx, `UPDATE vault_kv_metadata SET custom_metadata = ?, max_versions = ?, cas_required = ?, delete_version_after = ?,
				updated_at = ? WHERE scope_key = ?`, custom, m.MaxVersions, m.CASRequired, afterSec, now, key)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			m.CreatedAt = s.now()
		}
		m.UpdatedAt = s.now()
		keys := make([]string, 0, len(m.Custom))
		for k := range m.Custom {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out = m
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.secret.metadata", OrgID: p.org.ID, Target: target,
			Details: map[string]any{"custom_metadata_keys": keys, "max_versions": m.MaxVersions, "cas_required": m.CASRequired,
				"delete_version_after": m.DeleteVersionAfter.String(), "secret_exists": secID != 0}})
	})
	return out, err
}

// kvMetadataOnly lists the paths directly below a scope that have KV
// metadata but no secret (metadata written before any data): the names
// in the scope itself and, in a project, the environments holding such
// paths. The Vault-compatible API lists them, as Vault does.
func (s *Service) kvMetadataOnly(ctx context.Context, p place) (names, envs []string, err error) {
	q := `SELECT m.scope_key FROM vault_kv_metadata m WHERE m.org_id = ? AND `
	args := []any{p.org.ID}
	if p.project.ID == 0 {
		q += "m.project_id IS NULL"
	} else {
		q += "m.project_id = ?"
		args = append(args, p.project.ID)
	}
	if p.env != "" {
		// Names hold no '/', so the scope key's prefix selects this
		// environment only.
		q += ` AND m.scope_key LIKE ? ESCAPE '\'`
		args = append(args, strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(p.scopeKey(""))+"%")
	}
	q += " AND NOT EXISTS (SELECT 1 FROM vault_secrets s WHERE s.scope_key = m.scope_key) ORDER BY m.scope_key LIMIT " + strconv.Itoa(maxListResult)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	// A scope key is ORG_ID/PROJECT_ID/ENV/NAME (ENV empty above
	// environments).
	prefix := strconv.FormatInt(p.org.ID, 10) + "/" + strconv.FormatInt(p.project.ID, 10) + "/"
	seen := map[string]bool{}
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, nil, err
		}
		env, name, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		switch {
		case !ok || !strings.HasPrefix(key, prefix):
		case env == p.env:
			names = append(names, name)
		case p.env == "" && p.project.ID != 0 && !seen[env]:
			seen[env] = true
			envs = append(envs, env)
		}
	}
	return names, envs, rows.Err()
}

// dropKVMetadataTx deletes the KV metadata of the path of secret id.
func dropKVMetadataTx(ctx context.Context, tx *store.Tx, id int64) error {
	_, err := tx.Exec(ctx, "DELETE FROM vault_kv_metadata WHERE scope_key = (SELECT scope_key FROM vault_secrets WHERE id = ?)", id)
	return err
}

// DeleteKVMetadata deletes the KV metadata of a path that holds no
// secret (Vault's DELETE of metadata written before any data); NotFound
// when there is none.
func (s *Service) DeleteKVMetadata(ctx context.Context, ref Ref) error {
	if err := ValidateName(ref.Name); err != nil {
		return err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return err
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM vault_kv_metadata WHERE scope_key = ? AND NOT EXISTS (SELECT 1 FROM vault_secrets WHERE scope_key = ?)",
			p.scopeKey(ref.Name), p.scopeKey(ref.Name))
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "no KV metadata at %s", ref)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.secret.delete_all", OrgID: p.org.ID,
			Target: audit.Target{Type: "secret", Name: ref.String()}, Details: map[string]any{"versions": 0, "metadata_only": true}})
	})
}
