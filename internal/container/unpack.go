package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// MaxUnpack bounds the bytes Unpack writes (a root filesystem larger than
// this is refused).
const MaxUnpack = 8 << 30

// Unpack writes the flattened filesystem of img into dir (which must be
// empty or missing): the layers squashed with mutate.Extract, whiteouts
// applied. Entries that would land outside dir (absolute or ".." paths,
// links pointing out are kept as links, never followed) are refused; device
// nodes are skipped; setuid and setgid bits are dropped.
func Unpack(img v1.Image, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var written int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		name := filepath.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		target := filepath.Join(dir, name)
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("unpack: entry %q escapes the root", h.Name)
		}
		// Never write through a symbolic link planted by an earlier entry.
		if err := noLinkInPath(dir, filepath.Dir(name)); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
		}
		mode := os.FileMode(h.Mode & 0o777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
			_ = os.Chmod(target, mode)
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			written += h.Size
			if written > MaxUnpack {
				return fmt.Errorf("unpack: image larger than %d bytes", int64(MaxUnpack))
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack %s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src := filepath.Join(dir, filepath.Clean("/"+h.Linkname))
			if err := noLinkInPath(dir, filepath.Clean("/"+h.Linkname)); err != nil {
				return fmt.Errorf("unpack: hard link %q: %w", h.Name, err)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
		default:
			// Devices, FIFOs: not needed by build jobs, never created.
		}
	}
}

// noLinkInPath fails when a component of rel (inside dir) is a symbolic link.
func noLinkInPath(dir, rel string) error {
	p := filepath.Clean(dir)
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		if part == "" {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("path goes through the symbolic link %s", strings.TrimPrefix(p, dir))
		}
	}
	return nil
}

// ImageFromLayout returns the image of an OCI image layout directory: the
// one whose index annotation org.opencontainers.image.ref.name is ref, or
// the only image when ref is empty.
func ImageFromLayout(path, ref string) (v1.Image, error) {
	lp, err := layout.FromPath(path)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", path, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", path, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", path, err)
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		if ref == "" || d.Annotations["org.opencontainers.image.ref.name"] == ref {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("oci layout %s: %d images match %q, want 1", path, len(found), ref)
	}
	return lp.Image(found[0].Digest)
}
