// Package blob stores large objects (pipeline logs, artifacts, caches) by
// key. The embedded implementation is fileblob (files under the data
// directory); an S3-compatible implementation can follow, passing the same
// contract suite (blobtest.Run).
//
// Keys are slash-separated relative paths of letters, digits, '.', '-'
// and '_' (no "..", no empty element); implementations map them to their
// storage. Objects are written whole (Create then Close) or appended to
// while open, and read from an offset, which is what live log streaming
// needs.
package blob

import (
	"context"
	"io"
	"regexp"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Store is a blob store.
type Store interface {
	// Create starts writing the object key, replacing any previous one;
	// the bytes are readable (up to what was written) while it is open.
	Create(ctx context.Context, key string) (io.WriteCloser, error)
	// Open reads the object from offset. A missing key is apperr.NotFound.
	Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error)
	// Size returns the object's current size.
	Size(ctx context.Context, key string) (int64, error)
	// Delete removes the objects whose keys start with prefix.
	Delete(ctx context.Context, prefix string) error
}

var keyElem = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidKey checks a key.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 {
		return apperr.E(apperr.Invalid, "blob key must be 1 to 1024 bytes")
	}
	for _, e := range strings.Split(key, "/") {
		if !keyElem.MatchString(e) {
			return apperr.E(apperr.Invalid, "blob key %q: element %q is not allowed", key, e)
		}
	}
	return nil
}
