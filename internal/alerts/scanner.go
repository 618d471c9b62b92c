package alerts

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/advisory"
)

// LocalScanner builds the server's scanner on first use, with the OSV
// advisory database at AdvisoryPath when that file exists (`rampart db
// import --db DATA/advisories.db …` fills it). While the file is missing,
// dependencies are inventoried but not matched; once it appears, the next
// scan opens it.
type LocalScanner struct {
	AdvisoryPath string

	mu      sync.Mutex
	scanner *scan.Scanner
	db      *advisory.DB
}

// Scanner returns the scanner, for Deps.Scanner.
func (l *LocalScanner) Scanner(ctx context.Context) (Scanner, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.scanner != nil && (l.db != nil || !l.dbExists()) {
		return l.scanner, nil
	}
	var db *advisory.DB
	if l.dbExists() {
		var err error
		if db, err = advisory.Open(ctx, l.AdvisoryPath); err != nil {
			return nil, err
		}
	}
	s, err := scan.New(ctx, scan.Config{Advisories: db})
	if err != nil {
		if db != nil {
			db.Close()
		}
		return nil, err
	}
	// Only a scanner without a database is replaced, so no scan in
	// flight loses its database.
	l.scanner, l.db = s, db
	return s, nil
}

func (l *LocalScanner) dbExists() bool {
	if l.AdvisoryPath == "" {
		return false
	}
	_, err := os.Stat(l.AdvisoryPath)
	return !errors.Is(err, os.ErrNotExist)
}

// Close closes the advisory database.
func (l *LocalScanner) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil
	}
	err := l.db.Close()
	l.db, l.scanner = nil, nil
	return err
}
