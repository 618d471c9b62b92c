package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Key-encryption key rotation. Rotating makes a new KEK version current
// (new data keys are wrapped under it at once), then re-wraps every stored
// data key under it, in batches, while the vault keeps serving: each
// batch's rows switch atomically from the old wrapping to the new one, and
// old KEK versions are never deleted, so a crash at any point (kill -9
// included) leaves every value readable. Run resumes an unfinished
// re-wrap at start.

// rewrapper is a KEK that re-wraps without handing out the data key
// (Transit's rewrap endpoint).
type rewrapper interface {
	Rewrap(ctx context.Context, wrapped, aad []byte) ([]byte, int, error)
}

// KEKStatus describes the key-encryption key and a rotation's progress.
type KEKStatus struct {
	Kind    string
	Current int
	// Pending counts data keys still wrapped under older versions.
	Pending int64
	// ByVersion counts data keys per KEK version.
	ByVersion  map[int]int64
	StartedAt  time.Time
	FinishedAt time.Time
}

// KEKStatus reports the key-encryption key's current version and how many
// data keys each version wraps.
func (s *Service) KEKStatus(ctx context.Context) (KEKStatus, error) {
	cur, err := s.kek.Current(ctx)
	if err != nil {
		return KEKStatus{}, err
	}
	st := KEKStatus{Kind: s.kek.Kind(), Current: cur, ByVersion: map[int]int64{}}
	rows, err := s.db.Query(ctx, `SELECT kek_version, COUNT(*) FROM vault_versions WHERE wrapped_dek IS NOT NULL GROUP BY kek_version
		UNION ALL SELECT kek_version, COUNT(*) FROM vault_signing_keys GROUP BY kek_version
		UNION ALL SELECT kek_version, COUNT(*) FROM vault_keys GROUP BY kek_version`)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v int
			n int64
		)
		if err := rows.Scan(&v, &n); err != nil {
			return st, err
		}
		st.ByVersion[v] += n
		if v < cur {
			st.Pending += n
		}
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	err = s.db.QueryRow(ctx, "SELECT started_at, finished_at FROM vault_kek_state WHERE id = 1").Scan(store.TimeDest(&st.StartedAt), store.TimeDest(&st.FinishedAt))
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return st, err
	}
	return st, nil
}

// RotateKEK makes a new key-encryption key version current and re-wraps
// every data key under it before returning (Run finishes the job after a
// crash). It returns the new version.
func (s *Service) RotateKEK(ctx context.Context) (int, error) {
	s.rotating.Lock()
	defer s.rotating.Unlock()
	old, err := s.kek.Current(ctx)
	if err != nil {
		return 0, err
	}
	v, err := s.kek.Rotate(ctx)
	if err != nil {
		return 0, fmt.Errorf("rotate key-encryption key: %w", err)
	}
	now := s.now()
	err = s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO vault_kek_state (id, kind, target_version, started_at, finished_at) VALUES (1, ?, ?, ?, NULL)
			ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, target_version = excluded.target_version, started_at = excluded.started_at, finished_at = NULL`,
			s.kek.Kind(), v, store.Time(now)); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.kek.rotate", Target: audit.Target{Type: "vault_kek", ID: s.kek.Kind(), Name: s.kek.Kind()},
			Details: map[string]any{"from_version": old, "to_version": v}})
	})
	if err != nil {
		return v, err
	}
	// The re-wrap goes on if the caller goes away (Run would resume it).
	return v, s.rewrapAll(context.WithoutCancel(ctx))
}

// resumeRotation finishes a re-wrap interrupted by a crash: one recorded
// as unfinished, or data keys below the current version (a crash between
// making the new version and recording the rotation).
func (s *Service) resumeRotation(ctx context.Context) error {
	var finished time.Time
	err := s.db.QueryRow(ctx, "SELECT finished_at FROM vault_kek_state WHERE id = 1").Scan(store.TimeDest(&finished))
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	if err != nil || !finished.IsZero() {
		cur, err := s.kek.Current(ctx)
		if err != nil {
			return err
		}
		pending, err := s.pendingWraps(ctx, cur)
		if err != nil || len(pending) == 0 {
			return err
		}
	}
	if !s.rotating.TryLock() {
		return nil // a rotation is running in this process
	}
	defer s.rotating.Unlock()
	s.log.InfoContext(ctx, "resuming the re-wrap of data keys after an interrupted key-encryption key rotation")
	return s.rewrapAll(ctx)
}

// rewrapBatch is how many data keys one transaction re-wraps.
const rewrapBatch = 200

type wrappedRow struct {
	table  string
	key1   any
	key2   any
	aad    []byte
	blob   []byte
	oldVer int
}

// rewrapAll re-wraps every data key below the current KEK version.
func (s *Service) rewrapAll(ctx context.Context) error {
	target, err := s.kek.Current(ctx)
	if err != nil {
		return err
	}
	total := 0
	for {
		rows, err := s.pendingWraps(ctx, target)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		type update struct {
			r       wrappedRow
			blob    []byte
			version int
		}
		ups := make([]update, 0, len(rows))
		for _, r := range rows {
			blob, v, err := s.rewrap(ctx, r.blob, r.aad)
			if err != nil {
				return fmt.Errorf("re-wrap a data key of %s: %w", r.table, err)
			}
			ups = append(ups, update{r, blob, v})
		}
		err = s.db.DurableTx(ctx, func(tx *store.Tx) error {
			for _, u := range ups {
				var q string
				switch u.r.table {
				case "vault_versions":
					q = "UPDATE vault_versions SET wrapped_dek = ?, kek_version = ? WHERE secret_id = ? AND version = ? AND kek_version = ?"
				case "vault_signing_keys":
					q = "UPDATE vault_signing_keys SET wrapped_dek = ?, kek_version = ? WHERE id = ? AND ? = 0 AND kek_version = ?"
				case "vault_keys":
					q = "UPDATE vault_keys SET wrapped = ?, kek_version = ? WHERE name = ? AND ? = 0 AND kek_version = ?"
				}
				if _, err := tx.Exec(ctx, q, u.blob, u.version, u.r.key1, u.r.key2, u.r.oldVer); err != nil {
					return err
				}
			}
			return nil
		})
		s.reads.invalidate()
		if err != nil {
			return err
		}
		total += len(ups)
	}
	err = s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		n, err := tx.Exec(ctx, "UPDATE vault_kek_state SET finished_at = ? WHERE id = 1 AND finished_at IS NULL", store.Time(s.now()))
		if err != nil || n == 0 {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.kek.rewrapped", Target: audit.Target{Type: "vault_kek", ID: s.kek.Kind(), Name: s.kek.Kind()},
			Details: map[string]any{"version": target, "data_keys": total}})
	})
	return err
}

func (s *Service) rewrap(ctx context.Context, blob, aad []byte) ([]byte, int, error) {
	if rw, ok := s.kek.(rewrapper); ok {
		return rw.Rewrap(ctx, blob, aad)
	}
	dek, err := s.kek.Unwrap(ctx, blob, aad)
	if err != nil {
		return nil, 0, err
	}
	defer clear(dek)
	return s.kek.Wrap(ctx, dek, aad)
}

// pendingWraps returns up to rewrapBatch data keys wrapped below target.
func (s *Service) pendingWraps(ctx context.Context, target int) ([]wrappedRow, error) {
	var out []wrappedRow
	rows, err := s.db.Query(ctx, `SELECT v.secret_id, v.version, s.uid, v.wrapped_dek, v.kek_version FROM vault_versions v
		JOIN vault_secrets s ON s.id = v.secret_id WHERE v.kek_version < ? AND v.wrapped_dek IS NOT NULL LIMIT ?`, target, rewrapBatch)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			r       wrappedRow
			id      int64
			version int
			uid     string
		)
		if err := rows.Scan(&id, &version, &uid, &r.blob, &r.oldVer); err != nil {
			rows.Close()
			return nil, err
		}
		r.table, r.key1, r.key2, r.aad = "vault_versions", id, version, versionAAD(uid, version)
		out = append(out, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		return out, nil
	}
	rows, err = s.db.Query(ctx, "SELECT id, uid, wrapped_dek, kek_version FROM vault_signing_keys WHERE kek_version < ? LIMIT ?", target, rewrapBatch)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			r   wrappedRow
			id  int64
			uid string
		)
		if err := rows.Scan(&id, &uid, &r.blob, &r.oldVer); err != nil {
			rows.Close()
			return nil, err
		}
		r.table, r.key1, r.key2, r.aad = "vault_signing_keys", id, 0, signingAAD(uid)
		out = append(out, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		return out, nil
	}
	rows, err = s.db.Query(ctx, "SELECT name, wrapped, kek_version FROM vault_keys WHERE kek_version < ?", target)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r    wrappedRow
			name string
		)
		if err := rows.Scan(&name, &r.blob, &r.oldVer); err != nil {
			return nil, err
		}
		r.table, r.key1, r.key2, r.aad = "vault_keys", name, 0, internalAAD(name)
		out = append(out, r)
	}
	return out, rows.Err()
}

// deliverEvents hands queued rotations to the Restarter, oldest first; an
// event is deleted once delivered.
func (s *Service) deliverEvents(ctx context.Context) error {
	if s.restarter == nil {
		return nil
	}
	for {
		rows, err := s.db.Query(ctx, "SELECT id, secret_id, ref, version, created_at FROM vault_events ORDER BY id LIMIT 100")
		if err != nil {
			return err
		}
		var evs []RotationEvent
		for rows.Next() {
			var (
				ev     RotationEvent
				evID   int64
				refStr string
			)
			if err := rows.Scan(&evID, &ev.ID, &refStr, &ev.Version, store.TimeDest(&ev.At)); err != nil {
				rows.Close()
				return err
			}
			ev.Ref, _ = ParseRef(refStr)
			evs = append(evs, ev)
			_ = evID
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for _, ev := range evs {
			if err := s.restarter.SecretRotated(ctx, ev); err != nil {
				return fmt.Errorf("restart workloads using %s: %w", ev.Ref, err)
			}
			if _, err := s.db.Exec(ctx, "DELETE FROM vault_events WHERE secret_id = ? AND version = ?", ev.ID, ev.Version); err != nil {
				return err
			}
		}
	}
}
