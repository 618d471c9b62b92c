package registry

import (
	"context"
	"errors"
	"io"
	"path"
	"path/filepath"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// Content is where blob bytes live: one of distribution's storage drivers
// (filesystem by default, S3 for scale-out). The layout on the driver is
// Rampart's own and deliberately flat:
//
//	/blobs/ALG/HH/HEX      verified content, written once by a rename
//	/uploads/ID            bytes of an upload in progress
//
// Everything else — which repository sees which blob, manifests, tags,
// referrers, scan results — is metadata in the store.
type Content struct {
	d storagedriver.StorageDriver
	// root is the directory of the filesystem driver ("" for other
	// drivers): uploads there get their writeback started early.
	root string
}

// writebackEvery is how many bytes of an upload accumulate before their
// writeback starts (filesystem driver, Linux): large enough for the disk
// to get long sequential writes.
const writebackEvery = 8 << 20

// localPath is where a driver path lives on the local filesystem, or ""
// when the driver is not the filesystem.
func (c *Content) localPath(p string) string {
	if c.root == "" {
		return ""
	}
	return filepath.Join(c.root, filepath.FromSlash(p))
}

func blobPath(d Digest) string {
	h := d.Hex()
	return path.Join("/blobs", d.Algorithm(), h[:2], h)
}

func uploadPath(id string) string { return path.Join("/uploads", id) }

// open returns a reader of a blob from offset.
func (c *Content) open(ctx context.Context, d Digest, offset int64) (io.ReadCloser, error) {
	return c.d.Reader(ctx, blobPath(d), offset)
}

// size returns the size of stored content, or -1 when it does not exist.
func (c *Content) size(ctx context.Context, p string) (int64, error) {
	fi, err := c.d.Stat(ctx, p)
	if err != nil {
		if isNotFound(err) {
			return -1, nil
		}
		return 0, err
	}
	return fi.Size(), nil
}

func isNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}

// uploadWriter opens an upload for appending.
func (c *Content) uploadWriter(ctx context.Context, id string) (storagedriver.FileWriter, error) {
	return c.d.Writer(ctx, uploadPath(id), true)
}

// readUpload reads an upload's bytes from offset.
func (c *Content) readUpload(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	return c.d.Reader(ctx, uploadPath(id), offset)
}

// commitUpload moves a finished upload into place: a rename on the
// filesystem, so a partial blob is never visible.
func (c *Content) commitUpload(ctx context.Context, id string, d Digest) error {
	return c.d.Move(ctx, uploadPath(id), blobPath(d))
}

// putBlob writes small content (pull-through, generated artifacts) through
// an upload path, so that it too appears atomically.
func (c *Content) putBlob(ctx context.Context, tmpID string, d Digest, b []byte) error {
	if err := c.d.PutContent(ctx, uploadPath(tmpID), b); err != nil {
		return err
	}
	return c.commitUpload(ctx, tmpID, d)
}

func (c *Content) deleteUpload(ctx context.Context, id string) error {
	err := c.d.Delete(ctx, uploadPath(id))
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func (c *Content) deleteBlob(ctx context.Context, d Digest) error {
	err := c.d.Delete(ctx, blobPath(d))
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
