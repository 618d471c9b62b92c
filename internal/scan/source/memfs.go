package source

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"time"
)

// memFS is a read-only in-memory file system: the flattened image that
// ImageSource.FS returns. It implements fs.ReadDirFS, fs.ReadFileFS,
// fs.StatFS and fs.ReadLinkFS.
type memFS struct {
	nodes map[string]*memNode // "." is the root
}

// memNode is one file, directory or symbolic link.
type memNode struct {
	name       string
	mode       fs.FileMode
	mtime      time.Time
	size       int64
	data       []byte
	target     string // symbolic links
	unreadable string // why data was not kept
	layer      string
	children   []string // directories: names, sorted by finish
}

var (
	_ fs.ReadDirFS  = (*memFS)(nil)
	_ fs.ReadFileFS = (*memFS)(nil)
	_ fs.StatFS     = (*memFS)(nil)
	_ fs.ReadLinkFS = (*memFS)(nil)
)

func newMemFS() *memFS {
	return &memFS{nodes: map[string]*memNode{".": {name: ".", mode: fs.ModeDir | 0o755}}}
}

// add records a node, creating missing parent directories.
func (m *memFS) add(name string, n *memNode) {
	if old, ok := m.nodes[name]; ok && old.mode.IsDir() && n.mode.IsDir() {
		return // keep the first (uppermost) directory entry
	}
	m.nodes[name] = n
	for dir := path.Dir(name); ; dir = path.Dir(dir) {
		if _, ok := m.nodes[dir]; ok {
			break
		}
		m.nodes[dir] = &memNode{name: path.Base(dir), mode: fs.ModeDir | 0o755}
		if dir == "." {
			break
		}
	}
}

// finish fills in directory listings.
func (m *memFS) finish() {
	for _, n := range m.nodes {
		n.children = nil
	}
	for name := range m.nodes {
		if name == "." {
			continue
		}
		parent := m.nodes[path.Dir(name)]
		if parent == nil || !parent.mode.IsDir() {
			continue
		}
		parent.children = append(parent.children, path.Base(name))
	}
	for _, n := range m.nodes {
		slices.Sort(n.children)
	}
}

func (m *memFS) lookup(op, name string) (*memNode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, ok := m.nodes[name]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Open implements fs.FS. Symbolic links are not followed.
func (m *memFS) Open(name string) (fs.File, error) {
	n, err := m.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.mode.IsRegular() && n.unreadable != "" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not kept in memory: " + n.unreadable)}
	}
	return &memFile{fs: m, path: name, n: n, r: bytes.NewReader(n.data)}, nil
}

// ReadFile implements fs.ReadFileFS.
func (m *memFS) ReadFile(name string) ([]byte, error) {
	n, err := m.lookup("read", name)
	if err != nil {
		return nil, err
	}
	if n.mode.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	if n.unreadable != "" {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("not kept in memory: " + n.unreadable)}
	}
	return slices.Clone(n.data), nil
}

// Stat implements fs.StatFS (without following symbolic links).
func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	n, err := m.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return memInfo{n}, nil
}

// Lstat implements fs.ReadLinkFS.
func (m *memFS) Lstat(name string) (fs.FileInfo, error) { return m.Stat(name) }

// ReadLink implements fs.ReadLinkFS.
func (m *memFS) ReadLink(name string) (string, error) {
	n, err := m.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.target, nil
}

// ReadDir implements fs.ReadDirFS.
func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := m.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, 0, len(n.children))
	for _, c := range n.children {
		out = append(out, fs.FileInfoToDirEntry(memInfo{m.nodes[path.Join(name, c)]}))
	}
	return out, nil
}

// Layer returns the digest of the layer that wrote name, "" if unknown.
func (m *memFS) Layer(name string) string {
	if n, ok := m.nodes[name]; ok {
		return n.layer
	}
	return ""
}

type memInfo struct{ n *memNode }

func (i memInfo) Name() string       { return i.n.name }
func (i memInfo) Size() int64        { return i.n.size }
func (i memInfo) Mode() fs.FileMode  { return i.n.mode }
func (i memInfo) ModTime() time.Time { return i.n.mtime }
func (i memInfo) IsDir() bool        { return i.n.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

type memFile struct {
	fs     *memFS
	path   string
	n      *memNode
	r      *bytes.Reader
	offset int // ReadDir position
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f.n}, nil }
func (f *memFile) Close() error               { return nil }

func (f *memFile) Read(p []byte) (int, error) {
	if f.n.mode.IsDir() {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: errors.New("is a directory")}
	}
	return f.r.Read(p)
}

func (f *memFile) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }

// ReadDir implements fs.ReadDirFile.
func (f *memFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !f.n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: f.path, Err: errors.New("not a directory")}
	}
	rest := f.n.children[f.offset:]
	if n > 0 && len(rest) > n {
		rest = rest[:n]
	}
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	f.offset += len(rest)
	out := make([]fs.DirEntry, 0, len(rest))
	for _, c := range rest {
		out = append(out, fs.FileInfoToDirEntry(memInfo{f.fs.nodes[path.Join(f.path, c)]}))
	}
	return out, nil
}
