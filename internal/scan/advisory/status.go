package advisory

import (
	"context"
	"sort"
	"time"
)

// Status describes what the database holds.
type Status struct {
	// Advisories counts every stored advisory, Withdrawn those withdrawn.
	Advisories int `json:"advisories"`
	Withdrawn  int `json:"withdrawn"`
	// NewestModified is the latest "modified" time of any advisory: how
	// fresh the data itself is.
	NewestModified time.Time `json:"newest_modified,omitzero"`
	// LastImport and LastUpdate are when data last arrived through Import
	// or Update (Update counts as an import too).
	LastImport time.Time         `json:"last_import,omitzero"`
	LastUpdate time.Time         `json:"last_update,omitzero"`
	Ecosystems []EcosystemStatus `json:"ecosystems"`
}

// EcosystemStatus counts one ecosystem's advisories.
type EcosystemStatus struct {
	Name           string    `json:"name"`
	Advisories     int       `json:"advisories"`
	Withdrawn      int       `json:"withdrawn"`
	Packages       int       `json:"packages"`
	NewestModified time.Time `json:"newest_modified,omitzero"`
	Source         string    `json:"source,omitempty"`
	ImportedAt     time.Time `json:"imported_at,omitzero"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
}

// Status counts advisories per ecosystem and says when they arrived.
func (db *DB) Status(ctx context.Context) (*Status, error) {
	s := &Status{Ecosystems: []EcosystemStatus{}}
	var newest int64
	if err := db.st.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN withdrawn > 0 THEN 1 ELSE 0 END), 0),
		COALESCE(MAX(modified), 0) FROM advisory`).Scan(&s.Advisories, &s.Withdrawn, &newest); err != nil {
		return nil, err
	}
	s.NewestModified = fromMicros(newest)

	byName := map[string]*EcosystemStatus{}
	rows, err := db.st.Query(ctx, `SELECT f.ecosystem, COUNT(DISTINCT f.advisory_id),
		COUNT(DISTINCT CASE WHEN a.withdrawn > 0 THEN a.id END), COUNT(DISTINCT f.name), MAX(a.modified)
		FROM advisory_affected f JOIN advisory a ON a.id = f.advisory_id GROUP BY f.ecosystem`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e EcosystemStatus
		var mod int64
		if err := rows.Scan(&e.Name, &e.Advisories, &e.Withdrawn, &e.Packages, &mod); err != nil {
			rows.Close()
			return nil, err
		}
		e.NewestModified = fromMicros(mod)
		s.Ecosystems = append(s.Ecosystems, e)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for i := range s.Ecosystems {
		byName[s.Ecosystems[i].Name] = &s.Ecosystems[i]
	}

	rows, err = db.st.Query(ctx, "SELECT ecosystem, source, imported_at, updated_at FROM advisory_source")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var extra []EcosystemStatus
	for rows.Next() {
		var name, src string
		var imp, upd int64
		if err := rows.Scan(&name, &src, &imp, &upd); err != nil {
			return nil, err
		}
		e := byName[name]
		if e == nil {
			extra = append(extra, EcosystemStatus{Name: name})
			e = &extra[len(extra)-1]
		}
		e.Source, e.ImportedAt, e.UpdatedAt = src, fromMicros(imp), fromMicros(upd)
		if e.ImportedAt.After(s.LastImport) {
			s.LastImport = e.ImportedAt
		}
		if e.UpdatedAt.After(s.LastUpdate) {
			s.LastUpdate = e.UpdatedAt
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.Ecosystems = append(s.Ecosystems, extra...)
	sort.Slice(s.Ecosystems, func(i, j int) bool { return s.Ecosystems[i].Name < s.Ecosystems[j].Name })
	return s, nil
}
