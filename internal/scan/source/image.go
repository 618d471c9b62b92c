package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// Image limits, when ImageOptions do not say otherwise.
const (
	DefaultMaxLayerSize = 8 << 30  // uncompressed bytes read from one layer
	DefaultMaxFSSize    = 2 << 30  // file contents an image's FS keeps in memory
	maxMetadataSize     = 16 << 20 // manifests, indexes, configs
)

// ImageOptions tune an ImageSource.
type ImageOptions struct {
	// MaxFileSize skips larger files with a note; 0 means
	// DefaultMaxFileSize, a negative value no limit.
	MaxFileSize int64
	// MaxLayerSize stops reading a layer (with a note) after this many
	// uncompressed bytes, and skips layers whose compressed size is
	// larger; 0 means DefaultMaxLayerSize.
	MaxLayerSize int64
	// MaxFSSize bounds the file contents FS keeps in memory; 0 means
	// DefaultMaxFSSize. Files past it are listed but cannot be read.
	MaxFSSize int64
}

// ImageSource reads the flattened file system of an OCI image.
type ImageSource struct {
	img  v1.Image
	opts ImageOptions
}

var _ Source = (*ImageSource)(nil)

// Image opens the image at path: an OCI image layout directory, an OCI
// archive (a tar of such a layout) or a docker-save tarball. A corrupt or
// unrecognised archive is an error.
func Image(path string) (*ImageSource, error) { return OpenImage(path, ImageOptions{}) }

// OpenImage is Image with options.
func OpenImage(p string, opts ImageOptions) (*ImageSource, error) {
	img, err := openImage(p)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", p, err)
	}
	return FromImage(img, opts)
}

// FromImage returns a Source over an image that is already at hand (the
// registry passes the pushed image).
func FromImage(img v1.Image, opts ImageOptions) (*ImageSource, error) {
	if _, err := img.Manifest(); err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	return &ImageSource{img: img, opts: opts}, nil
}

// V1Image returns the underlying image.
func (s *ImageSource) V1Image() v1.Image { return s.img }

func openImage(p string) (v1.Image, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return ociImage(dirBlobs(p))
	}
	entries, err := indexTar(p)
	if err != nil {
		return nil, err
	}
	switch {
	case entries["manifest.json"].found:
		img, err := tarball.ImageFromPath(p, nil)
		if err != nil {
			return nil, fmt.Errorf("docker archive: %w", err)
		}
		return img, nil
	case entries["index.json"].found:
		return ociImage(tarBlobs{path: p, entries: entries})
	}
	return nil, errors.New("not an image archive, or a truncated one: it has no manifest.json (docker save) nor index.json (OCI)")
}

// blobs opens the files of an OCI image layout.
type blobs interface {
	open(name string) (io.ReadCloser, int64, error)
}

type dirBlobs string

func (d dirBlobs) open(name string) (io.ReadCloser, int64, error) {
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(name)))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// tarEntry locates a member's data inside a tar file.
type tarEntry struct {
	found        bool
	offset, size int64
}

type tarBlobs struct {
	path    string
	entries map[string]tarEntry
}

func (t tarBlobs) open(name string) (io.ReadCloser, int64, error) {
	e, ok := t.entries[name]
	if !ok {
		return nil, 0, fmt.Errorf("%s: not in the archive", name)
	}
	f, err := os.Open(t.path)
	if err != nil {
		return nil, 0, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, e.offset, e.size), f}, e.size, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// indexTar lists the regular members of a tar file with their offsets.
func indexTar(p string) (map[string]tarEntry, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	entries := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("corrupt archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		entries[name] = tarEntry{found: true, offset: cr.n, size: h.Size}
	}
	if len(entries) == 0 {
		return nil, errors.New("corrupt archive: no files")
	}
	return entries, nil
}

func readSmall(b blobs, name string) ([]byte, error) {
	rc, size, err := b.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxMetadataSize {
		return nil, fmt.Errorf("%s: %s is too large for metadata", name, humanSize(size))
	}
	return io.ReadAll(io.LimitReader(rc, maxMetadataSize))
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// ociImage finds the image of an OCI layout: the first image manifest
// of index.json, following nested indexes, preferring linux/amd64.
func ociImage(b blobs) (v1.Image, error) {
	raw, err := readSmall(b, "index.json")
	if err != nil {
		return nil, fmt.Errorf("OCI layout: %w", err)
	}
	for depth := 0; depth < 4; depth++ {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("OCI layout: index: %w", err)
		}
		desc, err := pickManifest(idx)
		if err != nil {
			return nil, fmt.Errorf("OCI layout: %w", err)
		}
		body, err := readSmall(b, blobName(desc.Digest))
		if err != nil {
			return nil, fmt.Errorf("OCI layout: %w", err)
		}
		if desc.MediaType.IsIndex() {
			raw = body
			continue
		}
		m, err := v1.ParseManifest(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("OCI layout: manifest %s: %w", desc.Digest, err)
		}
		cfg, err := readSmall(b, blobName(m.Config.Digest))
		if err != nil {
			return nil, fmt.Errorf("OCI layout: config: %w", err)
		}
		mt := desc.MediaType
		if mt == "" {
			mt = m.MediaType
		}
		return partial.CompressedToImage(&layoutImage{b: b, manifest: body, parsed: m, config: cfg, mediaType: mt})
	}
	return nil, errors.New("OCI layout: indexes nested too deeply")
}

func pickManifest(idx *v1.IndexManifest) (v1.Descriptor, error) {
	var first *v1.Descriptor
	for i, d := range idx.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() && d.MediaType != "" {
			continue
		}
		if first == nil {
			first = &idx.Manifests[i]
		}
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			return d, nil
		}
	}
	if first == nil {
		return v1.Descriptor{}, errors.New("index lists no image")
	}
	return *first, nil
}

// layoutImage is a partial.CompressedImageCore over OCI layout blobs.
type layoutImage struct {
	b         blobs
	manifest  []byte
	parsed    *v1.Manifest
	config    []byte
	mediaType types.MediaType
}

func (l *layoutImage) RawConfigFile() ([]byte, error)      { return l.config, nil }
func (l *layoutImage) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *layoutImage) RawManifest() ([]byte, error)        { return l.manifest, nil }

func (l *layoutImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range l.parsed.Layers {
		if d.Digest == h {
			return &layoutLayer{b: l.b, desc: d}, nil
		}
	}
	if h == l.parsed.Config.Digest {
		return &layoutLayer{b: l.b, desc: l.parsed.Config}, nil
	}
	return nil, fmt.Errorf("layer %s is not in the manifest", h)
}

type layoutLayer struct {
	b    blobs
	desc v1.Descriptor
}

func (l *layoutLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *layoutLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *layoutLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *layoutLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.b.open(blobName(l.desc.Digest))
	return rc, err
}

// entry is one visible file system object of the flattened image.
type entry struct {
	hdr   *tar.Header
	name  string // clean, relative, slash-separated
	layer string
}

// layers walks the image's layers from the top down and calls visit for
// every entry not hidden by an upper layer (a whiteout, an opaque
// directory, a non-directory replacing a directory, or the same path
// written again). visit may read the entry's content from r.
func (s *ImageSource) layers(ctx context.Context, visit func(e entry, r io.Reader) error) ([]report.Note, error) {
	layers, err := s.img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	maxLayer := s.opts.MaxLayerSize
	if maxLayer <= 0 {
		maxLayer = DefaultMaxLayerSize
	}
	var notes []report.Note
	upper := map[string]bool{}     // paths written or deleted above
	hideBelow := map[string]bool{} // directories whose lower contents are gone
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		d, err := l.Digest()
		if err != nil {
			return notes, fmt.Errorf("layer %d: %w", i+1, err)
		}
		digest := d.String()
		if size, err := l.Size(); err == nil && size > maxLayer {
			notes = append(notes, report.Note{Path: digest, Message: fmt.Sprintf("layer skipped: %s is over the %s layer size limit", humanSize(size), humanSize(maxLayer))})
			continue
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return notes, fmt.Errorf("layer %s: %w", digest, err)
		}
		cr := &countingReader{r: io.LimitReader(rc, maxLayer+1)}
		tr := tar.NewReader(cr)
		type mark struct {
			name            string
			upper, hideKids bool
		}
		var marks []mark
		for {
			if err := ctx.Err(); err != nil {
				rc.Close()
				return notes, err
			}
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				if cr.n > maxLayer {
					notes = append(notes, report.Note{Path: digest, Message: fmt.Sprintf("layer cut short: over the %s layer size limit", humanSize(maxLayer))})
					break
				}
				return notes, fmt.Errorf("layer %s: corrupt: %w", digest, err)
			}
			name := cleanName(h.Name)
			if name == "" {
				continue
			}
			dir, base := path.Split(name)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == ".wh..wh..opq":
				marks = append(marks, mark{name: dir, hideKids: true})
				continue
			case strings.HasPrefix(base, ".wh."):
				gone := path.Join(dir, strings.TrimPrefix(base, ".wh."))
				marks = append(marks, mark{name: gone, upper: true, hideKids: true})
				continue
			}
			marks = append(marks, mark{name: name, upper: true, hideKids: h.Typeflag != tar.TypeDir})
			if upper[name] || hiddenByAncestor(name, hideBelow) {
				continue
			}
			if err := visit(entry{hdr: h, name: name, layer: digest}, tr); err != nil {
				rc.Close()
				return notes, err
			}
		}
		rc.Close()
		for _, m := range marks {
			if m.upper {
				upper[m.name] = true
			}
			if m.hideKids {
				hideBelow[m.name] = true
			}
		}
	}
	return notes, nil
}

// cleanName turns a tar member name into a clean relative path; "" for
// the root or a name escaping it.
func cleanName(n string) string {
	c := path.Clean("/" + n)
	if c == "/" {
		return ""
	}
	return c[1:]
}

func hiddenByAncestor(name string, hideBelow map[string]bool) bool {
	if len(hideBelow) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' && hideBelow[name[:i]] {
			return true
		}
	}
	return false
}

// Walk implements Source: the regular files of the flattened image, each
// attributed (Loc.Layer) to the digest of the layer that last wrote it.
// Binary files are counted as skipped, with one note for them all.
func (s *ImageSource) Walk(ctx context.Context, fn func(File) error) (report.Stats, []report.Note, error) {
	var (
		stats  report.Stats
		notes  []report.Note
		binary int64
	)
	limit := Options{MaxFileSize: s.opts.MaxFileSize}.maxSize()
	lnotes, err := s.layers(ctx, func(e entry, r io.Reader) error {
		if e.hdr.Typeflag != tar.TypeReg {
			return nil
		}
		if e.hdr.Size > limit {
			notes = append(notes, sizeNote(e.name, e.hdr.Size, limit))
			stats.Skipped++
			return nil
		}
		data := make([]byte, e.hdr.Size)
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("layer %s: %s: corrupt: %w", e.layer, e.name, err)
		}
		if IsBinary(data) {
			binary++
			stats.Skipped++
			return nil
		}
		stats.Files++
		stats.Bytes += int64(len(data))
		return fn(File{Path: e.name, Data: data, Loc: report.Location{Path: e.name, Layer: e.layer}})
	})
	notes = append(lnotes, notes...)
	if binary > 0 {
		notes = append(notes, report.Note{Message: fmt.Sprintf("skipped %d binary files", binary)})
	}
	return stats, notes, err
}

// FS returns the flattened file system of the image, in memory: regular
// files (up to the size limits), directories and symbolic links, with the
// modes and times of their tar headers. Symbolic links are not followed
// by Open; ReadLink returns their targets. Files over the limits are
// listed, and reading them fails with an error saying why.
func (s *ImageSource) FS(ctx context.Context) (fs.FS, []report.Note, error) {
	limit := Options{MaxFileSize: s.opts.MaxFileSize}.maxSize()
	total := s.opts.MaxFSSize
	if total <= 0 {
		total = DefaultMaxFSSize
	}
	m := newMemFS()
	var (
		notes []report.Note
		kept  int64
		links = map[string]string{} // hard links: name → target
	)
	lnotes, err := s.layers(ctx, func(e entry, r io.Reader) error {
		h := e.hdr
		n := &memNode{name: path.Base(e.name), mode: h.FileInfo().Mode(), mtime: h.ModTime, layer: e.layer, size: h.Size}
		switch h.Typeflag {
		case tar.TypeDir:
			n.mode = fs.ModeDir | n.mode.Perm()
			n.size = 0
		case tar.TypeSymlink:
			n.target = h.Linkname
			n.size = int64(len(h.Linkname))
		case tar.TypeLink:
			links[e.name] = cleanName(h.Linkname)
			return nil
		case tar.TypeReg:
			switch {
			case h.Size > limit:
				n.unreadable = fmt.Sprintf("%s is over the %s file size limit", humanSize(h.Size), humanSize(limit))
			case kept+h.Size > total:
				n.unreadable = fmt.Sprintf("the image's files are over the %s limit kept in memory", humanSize(total))
			default:
				n.data = make([]byte, h.Size)
				if _, err := io.ReadFull(r, n.data); err != nil {
					return fmt.Errorf("layer %s: %s: corrupt: %w", e.layer, e.name, err)
				}
				kept += h.Size
			}
			if n.unreadable != "" {
				notes = append(notes, report.Note{Path: e.name, Message: "not kept: " + n.unreadable})
			}
		default:
			return nil // devices, fifos
		}
		m.add(e.name, n)
		return nil
	})
	if err != nil {
		return nil, append(lnotes, notes...), err
	}
	for name, target := range links {
		t, ok := m.nodes[target]
		if !ok || t.mode.IsDir() {
			continue
		}
		c := *t
		c.name = path.Base(name)
		m.add(name, &c)
	}
	m.finish()
	return m, append(lnotes, notes...), nil
}

// ConfigFile returns the image's configuration (environment, entrypoint,
// history), which other scanners inspect.
func (s *ImageSource) ConfigFile() (*v1.ConfigFile, error) { return s.img.ConfigFile() }
