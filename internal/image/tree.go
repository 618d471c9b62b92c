package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/rampartsec/rampart/internal/apperr"
)

// node is one file, directory or symbolic link of a source tree.
type node struct {
	mode     fs.FileMode // type bits and permissions
	size     int64
	link     string // symlink target
	uid, gid int
	data     []byte // content held in memory (stage trees)
	disk     string // content on disk (the build context)
}

// tree is a filesystem a COPY reads from: the build context (confined:
// nothing may point outside it) or the flattened root of an earlier stage
// (symlinks resolve as they would inside a container).
type tree struct {
	what     string // "the build context", "stage build"
	confined bool
	nodes    map[string]*node // clean relative paths; "." is the root
	sorted   []string
}

func newTree(what string, confined bool) *tree {
	return &tree{what: what, confined: confined, nodes: map[string]*node{".": {mode: fs.ModeDir | 0o755}}}
}

func (t *tree) add(name string, n *node) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	if name == "" || name == "/" {
		name = "."
	}
	// Parents that an archive left out.
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if _, ok := t.nodes[d]; ok {
			break
		}
		t.nodes[d] = &node{mode: fs.ModeDir | 0o755}
	}
	t.nodes[name] = n
	t.sorted = nil
}

func (t *tree) index() {
	if t.sorted != nil {
		return
	}
	t.sorted = make([]string, 0, len(t.nodes))
	for k := range t.nodes {
		t.sorted = append(t.sorted, k)
	}
	slices.Sort(t.sorted)
}

// below lists the paths under dir (not dir itself), sorted.
func (t *tree) below(dir string) []string {
	t.index()
	if dir == "." {
		return slices.DeleteFunc(slices.Clone(t.sorted), func(s string) bool { return s == "." })
	}
	prefix := dir + "/"
	i := sort.SearchStrings(t.sorted, prefix)
	var out []string
	for ; i < len(t.sorted) && strings.HasPrefix(t.sorted[i], prefix); i++ {
		out = append(out, t.sorted[i])
	}
	return out
}

var errOutside = errors.New("outside")

// resolve follows symbolic links in p (in every component, and in the
// last one too when followLast) and returns the resolved path and its node
// (nil when it does not exist).
func (t *tree) resolve(p string, followLast bool) (string, *node, error) {
	p = path.Clean(p)
	hops := 0
	for {
		parts := strings.Split(p, "/")
		cur := "."
		restarted := false
		for i, part := range parts {
			if part == "." || part == "" {
				continue
			}
			next := path.Join(cur, part)
			n := t.nodes[next]
			if n == nil {
				if i < len(parts)-1 {
					return "", nil, nil
				}
				return next, nil, nil
			}
			last := i == len(parts)-1
			if n.mode&fs.ModeSymlink != 0 && (!last || followLast) {
				hops++
				if hops > 40 {
					return "", nil, apperr.E(apperr.Invalid, "%s: too many levels of symbolic links at %s", t.what, next)
				}
				target, err := t.linkTarget(next, n.link)
				if err != nil {
					return "", nil, err
				}
				p = path.Join(append([]string{target}, parts[i+1:]...)...)
				restarted = true
				break
			}
			cur = next
		}
		if !restarted {
			return cur, t.nodes[cur], nil
		}
	}
}

// linkTarget is where the symlink at name points, relative to the root.
func (t *tree) linkTarget(name, link string) (string, error) {
	var target string
	if path.IsAbs(link) {
		if t.confined {
			return "", apperr.E(apperr.Invalid, "%s: symbolic link %s points outside it (%s)", t.what, name, link)
		}
		target = path.Clean(strings.TrimPrefix(link, "/"))
	} else {
		target = path.Join(path.Dir(name), link)
		if target == ".." || strings.HasPrefix(target, "../") {
			if t.confined {
				return "", apperr.E(apperr.Invalid, "%s: symbolic link %s points outside it (%s)", t.what, name, link)
			}
			target = path.Clean("/" + path.Join(path.Dir(name), link))[1:]
		}
	}
	if target == "" {
		target = "."
	}
	return target, nil
}

// open returns a node's content.
func (n *node) open() (io.ReadCloser, error) {
	if n.disk == "" {
		return io.NopCloser(bytes.NewReader(n.data)), nil
	}
	// O_NOFOLLOW: a file swapped for a symbolic link after the context
	// was indexed is not followed out of the context.
	f, err := os.OpenFile(n.disk, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() != n.size {
		f.Close()
		return nil, apperr.E(apperr.Conflict, "%s changed during the build", n.disk)
	}
	return f, nil
}

// ignorer applies .dockerignore patterns.
type ignorer struct {
	patterns []ignorePattern
	hasNeg   bool
}

type ignorePattern struct {
	glob string
	neg  bool
}

// maxIgnorePatterns bounds a .dockerignore file.
const maxIgnorePatterns = 10000

// parseDockerignore reads .dockerignore: one pattern a line, # comments,
// ! exceptions, ** for any number of directories.
func parseDockerignore(data []byte) (*ignorer, error) {
	ig := &ignorer{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		if neg {
			line = strings.TrimSpace(line[1:])
		}
		line = filepath.ToSlash(line)
		line = path.Clean(strings.TrimPrefix(line, "/"))
		if line == "/" {
			line = "."
		}
		if !doublestar.ValidatePattern(line) {
			return nil, apperr.E(apperr.Invalid, ".dockerignore:%d: invalid pattern %q", i+1, line)
		}
		if len(ig.patterns) >= maxIgnorePatterns {
			return nil, apperr.E(apperr.TooLarge, ".dockerignore: more than %d patterns", maxIgnorePatterns)
		}
		ig.patterns = append(ig.patterns, ignorePattern{glob: line, neg: neg})
		ig.hasNeg = ig.hasNeg || neg
	}
	return ig, nil
}

// ignored reports whether rel (slash-separated, relative) is excluded: the
// last pattern matching it or one of its parent directories decides.
func (ig *ignorer) ignored(rel string) bool {
	if ig == nil {
		return false
	}
	out := false
	for _, p := range ig.patterns {
		if matchSelfOrParent(p.glob, rel) {
			out = !p.neg
		}
	}
	return out
}

func matchSelfOrParent(glob, rel string) bool {
	for p := rel; ; {
		if ok, _ := doublestar.Match(glob, p); ok {
			return true
		}
		d := path.Dir(p)
		if d == "." || d == p {
			return false
		}
		p = d
	}
}

// Limits bound what one build reads and writes. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	// ContextBytes bounds the regular files of the build context that
	// .dockerignore leaves in, and the bytes extracted from an ADDed
	// archive or an earlier stage.
	ContextBytes int64
	// Files bounds the entries of the build context (and of an ADDed
	// archive or a flattened stage).
	Files int
	// Layers bounds the layers of the built image, base layers included.
	Layers int
	// LayerBytes bounds one new layer, uncompressed.
	LayerBytes int64
}

// DefaultLimits are the limits of a build that sets none.
var DefaultLimits = Limits{ContextBytes: 512 << 20, Files: 100000, Layers: 127, LayerBytes: 512 << 20}

func (l Limits) withDefaults() Limits {
	if l.ContextBytes <= 0 {
		l.ContextBytes = DefaultLimits.ContextBytes
	}
	if l.Files <= 0 {
		l.Files = DefaultLimits.Files
	}
	if l.Layers <= 0 {
		l.Layers = DefaultLimits.Layers
	}
	if l.LayerBytes <= 0 {
		l.LayerBytes = DefaultLimits.LayerBytes
	}
	return l
}

// loadContext indexes the build context under root, leaving out what
// .dockerignore excludes, within the limits. File contents are read later,
// when a layer needs them.
func loadContext(root string, lim Limits) (*tree, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "build context "+root+" cannot be read")
	}
	if !st.IsDir() {
		return nil, apperr.E(apperr.Invalid, "build context %s is not a directory", root)
	}
	var ig *ignorer
	if data, err := os.ReadFile(filepath.Join(root, ".dockerignore")); err == nil {
		if ig, err = parseDockerignore(data); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, apperr.Wrap(err, apperr.Invalid, "read .dockerignore")
	}
	t := newTree("the build context", true)
	t.nodes["."].mode = fs.ModeDir | st.Mode().Perm()
	var total int64
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return apperr.Wrap(err, apperr.Invalid, "read build context")
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if ig.ignored(rel) {
			if d.IsDir() && !ig.hasNeg {
				return filepath.SkipDir
			}
			return nil
		}
		files++
		if files > lim.Files {
			return apperr.E(apperr.TooLarge, "build context has more than %d files (limit)", lim.Files)
		}
		info, err := d.Info()
		if err != nil {
			return apperr.Wrap(err, apperr.Invalid, "read build context")
		}
		n := &node{mode: info.Mode().Type() | info.Mode().Perm()}
		switch {
		case info.Mode().IsRegular():
			n.size, n.disk = info.Size(), p
			total += info.Size()
			if total > lim.ContextBytes {
				return apperr.E(apperr.TooLarge, "build context is larger than %d bytes (limit)", lim.ContextBytes)
			}
		case info.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			if n.link, err = os.Readlink(p); err != nil {
				return apperr.Wrap(err, apperr.Invalid, "read build context")
			}
		default:
			return nil // sockets, devices, pipes: not part of an image
		}
		t.add(rel, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// treeFromTar reads a flattened filesystem (a stage's root, an archive)
// into a tree, within the limits. Names that would leave the root are
// refused.
func treeFromTar(what string, confined bool, r io.Reader, lim Limits) (*tree, error) {
	t := newTree(what, confined)
	tr := tar.NewReader(r)
	var total int64
	files := 0
	hardlinks := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, what+": not a valid tar archive")
		}
		name, err := archiveName(what, h.Name)
		if err != nil {
			return nil, err
		}
		files++
		if files > lim.Files {
			return nil, apperr.E(apperr.TooLarge, "%s has more than %d files (limit)", what, lim.Files)
		}
		n := &node{uid: h.Uid, gid: h.Gid, mode: fs.FileMode(h.Mode).Perm()}
		if h.Mode&0o4000 != 0 {
			n.mode |= fs.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			n.mode |= fs.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			n.mode |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			total += h.Size
			if total > lim.ContextBytes {
				return nil, apperr.E(apperr.TooLarge, "%s holds more than %d bytes (limit)", what, lim.ContextBytes)
			}
			data, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil || int64(len(data)) != h.Size {
				return nil, apperr.Wrap(err, apperr.Invalid, what+": truncated archive")
			}
			n.data, n.size = data, h.Size
		case tar.TypeDir:
			n.mode |= fs.ModeDir
		case tar.TypeSymlink:
			n.mode |= fs.ModeSymlink
			n.link = h.Linkname
		case tar.TypeLink:
			target, err := archiveName(what, h.Linkname)
			if err != nil {
				return nil, err
			}
			hardlinks[name] = target
			continue
		default:
			continue // devices, fifos: not copied
		}
		t.add(name, n)
	}
	for name, target := range hardlinks {
		src := t.nodes[target]
		if src == nil || !src.mode.IsRegular() {
			return nil, apperr.E(apperr.Invalid, "%s: hard link %s points to %s, which is not a file before it", what, name, target)
		}
		c := *src
		t.add(name, &c)
	}
	return t, nil
}

// archiveName cleans an archive member's name, refusing any that would
// leave the destination.
func archiveName(what, name string) (string, error) {
	n := strings.ReplaceAll(name, "\\", "/")
	if path.IsAbs(n) {
		n = strings.TrimLeft(n, "/")
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") || strings.Contains(n, "/../") || strings.HasSuffix(n, "/..") {
		return "", apperr.E(apperr.Invalid, "%s: member %q points outside the destination", what, name)
	}
	if c == "" {
		c = "."
	}
	return c, nil
}

func describe(n *node) string {
	switch {
	case n == nil:
		return "missing"
	case n.mode.IsDir():
		return "directory"
	case n.mode&fs.ModeSymlink != 0:
		return "symbolic link"
	default:
		return fmt.Sprintf("file of %d bytes", n.size)
	}
}
