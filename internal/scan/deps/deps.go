package deps

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/packageslockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gomod"
	javaarchive "github.com/google/osv-scalibr/extractor/filesystem/language/java/archive"
	archivemeta "github.com/google/osv-scalibr/extractor/filesystem/language/java/archive/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/pomxml"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/pnpmlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/yarnlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/php/composerlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/pipfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/poetrylock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/requirements"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/uvlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargolock"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	scalibrfs "github.com/google/osv-scalibr/fs"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// DefaultMaxFileSize is the largest file Inventory reads when Options
// does not say: far above any real lockfile or package database.
const DefaultMaxFileSize = 256 << 20

// DefaultSkipDirs are the directory names Inventory never enters: version
// control metadata, and installed node_modules trees (their packages are
// listed by the lockfile next to them).
var DefaultSkipDirs = []string{".git", ".hg", ".svn", "node_modules"}

// Options tune Inventory.
type Options struct {
	// Root is the directory on disk that fsys reads, when there is one
	// (os.DirFS(Root)). Extractors that need a real file, such as the RPM
	// database reader, then open it in place instead of copying it to a
	// temporary file.
	Root string
	// MaxFileSize skips larger files with a note; 0 means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// SkipDirs are directory names never entered; nil means
	// DefaultSkipDirs.
	SkipDirs []string
	// Skip, when set, is asked about every file and directory (path
	// relative to the root, slash-separated); true leaves it out.
	Skip func(path string, dir bool) bool
}

// extractorKind says what a file an extractor reads tells about
// directness.
type extractorKind int

const (
	lockfile extractorKind = iota // a lockfile: direct if a manifest names the package
	manifest                      // a manifest: every package it lists is direct
	goModule                      // go.mod: direct unless marked // indirect
	artifact                      // an installed package or binary: not a dependency declaration
)

type named struct {
	ex   filesystem.Extractor
	kind extractorKind
}

// extractors builds the osv-scalibr extractors Inventory runs, one set per
// call (they are cheap and some keep per-run state).
func extractors() ([]named, filesystem.Extractor, error) {
	// No size limit here: Inventory skips large files itself, with a note
	// (osv-scalibr's extractors would skip them silently).
	cfg := &cpb.PluginConfig{}
	type ctor struct {
		f    func(*cpb.PluginConfig) (filesystem.Extractor, error)
		kind extractorKind
	}
	ctors := []ctor{
		{gomod.New, goModule},
		{gobinary.New, artifact},
		{packagelockjson.New, lockfile},
		{yarnlock.New, lockfile},
		{pnpmlock.New, lockfile},
		{requirements.New, manifest},
		{poetrylock.New, lockfile},
		{pipfilelock.New, lockfile},
		{uvlock.New, lockfile},
		{pomxml.New, manifest},
		{javaarchive.New, artifact},
		{cargolock.New, lockfile},
		{gemfilelock.New, lockfile},
		{composerlock.New, lockfile},
		{packageslockjson.New, lockfile},
		{dpkg.New, artifact},
		{apk.New, artifact},
		{rpm.New, artifact},
	}
	out := make([]named, 0, len(ctors))
	for _, c := range ctors {
		ex, err := c.f(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("set up extractor: %w", err)
		}
		out = append(out, named{ex, c.kind})
	}
	// A second go.mod reader that leaves out // indirect requirements:
	// what it returns is what the module requires directly.
	direct, err := gomod.New(&cpb.PluginConfig{PluginSpecific: []*cpb.PluginSpecificConfig{
		{Config: &cpb.PluginSpecificConfig_GoMod{GoMod: &cpb.GoModConfig{ExcludeIndirect: true}}},
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("set up extractor: %w", err)
	}
	return out, direct, nil
}

// scanFS is the file system interface osv-scalibr's extractors want.
type scanFS struct{ fs.FS }

func (s scanFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(s.FS, name) }
func (s scanFS) Stat(name string) (fs.FileInfo, error)      { return fs.Stat(s.FS, name) }

var _ scalibrfs.FS = scanFS{}

// fileAPI describes one walked file to FileRequired.
type fileAPI struct {
	path string
	d    fs.DirEntry
	once sync.Once
	info fs.FileInfo
	err  error
}

func (f *fileAPI) Path() string { return f.path }
func (f *fileAPI) Stat() (fs.FileInfo, error) {
	f.once.Do(func() { f.info, f.err = f.d.Info() })
	return f.info, f.err
}

// job is one file and the extractors that want it.
type job struct {
	path string
	info fs.FileInfo
	exs  []named
}

// result is what extracting one file gave.
type result struct {
	pkgs   []*extractor.Package
	kinds  []extractorKind
	direct map[string]bool // go.mod: names required directly
	notes  []report.Note
}

// Inventory lists the packages that the lockfiles, manifests, package
// databases and binaries under fsys declare or contain, using osv-scalibr's
// extractors: Go (go.mod, binaries), npm (package-lock.json v1–v3,
// yarn.lock, pnpm-lock.yaml), PyPI (requirements*.txt, poetry.lock,
// Pipfile.lock, uv.lock), Maven (pom.xml, JAR/WAR/EAR archives), Cargo
// (Cargo.lock), RubyGems (Gemfile.lock), Composer (composer.lock), NuGet
// (packages.lock.json), and OS packages (dpkg, apk and RPM databases).
//
// fsys may be a directory (os.DirFS) or any other file system, such as an
// image's flattened layers. A file that cannot be read or parsed becomes a
// Note and the rest of the inventory goes on; the error is only for a
// cancelled context or a root that cannot be walked at all. The same
// package found in several files is listed once, with every location.
func Inventory(ctx context.Context, fsys fs.FS, opts Options) ([]report.Package, []report.Note, error) {
	maxSize := opts.MaxFileSize
	if maxSize <= 0 {
		maxSize = DefaultMaxFileSize
	}
	skip := opts.SkipDirs
	if skip == nil {
		skip = DefaultSkipDirs
	}
	exs, directGo, err := extractors()
	if err != nil {
		return nil, nil, err
	}
	sfs, ok := fsys.(scalibrfs.FS)
	if !ok {
		sfs = scanFS{fsys}
	}

	var notes []report.Note
	var jobs []job
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			notes = append(notes, report.Note{Path: p, Message: "cannot read: " + err.Error()})
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && (slices.Contains(skip, d.Name()) || (opts.Skip != nil && opts.Skip(p, true))) {
				return fs.SkipDir
			}
			return nil
		}
		if opts.Skip != nil && opts.Skip(p, false) {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks, devices, sockets
		}
		api := &fileAPI{path: p, d: d}
		var want []named
		for _, n := range exs {
			if n.ex.FileRequired(api) {
				want = append(want, n)
			}
		}
		if len(want) == 0 {
			return nil
		}
		info, err := api.Stat()
		if err != nil {
			notes = append(notes, report.Note{Path: p, Message: "cannot read: " + err.Error()})
			return nil
		}
		if info.Size() > maxSize {
			notes = append(notes, report.Note{Path: p, Message: fmt.Sprintf("skipped: %d bytes is over the %d byte limit", info.Size(), maxSize)})
			return nil
		}
		jobs = append(jobs, job{path: p, info: info, exs: want})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("walk: %w", err)
	}

	results := make([]result, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(len(jobs), max(1, runtime.GOMAXPROCS(0))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = extractFile(ctx, sfs, opts.Root, jobs[i], directGo)
			}
		}()
	}
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}

	dm := newDirectManifests(fsys)
	merged := map[string]*report.Package{}
	var order []string
	for _, r := range results {
		notes = append(notes, r.notes...)
		for i, p := range r.pkgs {
			rp, ok := convert(p)
			if !ok {
				continue
			}
			loc := rp.Locations[0]
			switch r.kinds[i] {
			case manifest:
				rp.Direct = true
			case goModule:
				rp.Direct = r.direct[p.Name+"@"+p.Version]
			case lockfile:
				rp.Direct = dm.names(path.Dir(loc), rp.Ecosystem)[directKey(rp.Ecosystem, rp.Name)]
			}
			key := rp.Ecosystem + "\x00" + rp.Name + "\x00" + rp.Version + "\x00" + rp.PURL
			m, ok := merged[key]
			if !ok {
				merged[key] = &rp
				order = append(order, key)
				continue
			}
			m.Direct = m.Direct || rp.Direct
			m.Locations = appendNew(m.Locations, rp.Locations...)
			m.Licenses = appendNew(m.Licenses, rp.Licenses...)
			for k, v := range rp.Hashes {
				if m.Hashes == nil {
					m.Hashes = map[string]string{}
				}
				m.Hashes[k] = v
			}
		}
	}
	notes = append(notes, dm.notes...)
	pkgs := make([]report.Package, 0, len(order))
	for _, k := range order {
		p := merged[k]
		sort.Strings(p.Locations)
		pkgs = append(pkgs, *p)
	}
	sort.Slice(pkgs, func(i, j int) bool {
		a, b := pkgs[i], pkgs[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	sort.SliceStable(notes, func(i, j int) bool { return notes[i].Path < notes[j].Path })
	return pkgs, notes, nil
}

// extractFile runs the extractors that want one file.
func extractFile(ctx context.Context, sfs scalibrfs.FS, root string, j job, directGo filesystem.Extractor) (r result) {
	defer func() {
		// An extractor's bug must not end the scan: report it like a
		// broken file.
		if p := recover(); p != nil {
			r = result{notes: []report.Note{{Path: j.path, Message: fmt.Sprintf("extractor failed: %v", p)}}}
		}
	}()
	data, err := readFile(sfs, j.path, j.info.Size())
	if err != nil {
		return result{notes: []report.Note{{Path: j.path, Message: "cannot read: " + err.Error()}}}
	}
	input := func() *filesystem.ScanInput {
		return &filesystem.ScanInput{FS: sfs, Path: j.path, Root: root, Info: j.info, Reader: bytes.NewReader(data)}
	}
	for _, n := range j.exs {
		inv, err := n.ex.Extract(ctx, input())
		if err != nil {
			r.notes = append(r.notes, report.Note{Path: j.path, Message: fmt.Sprintf("%s: %v", n.ex.Name(), err)})
			continue
		}
		for _, p := range inv.Packages {
			if n.kind == goModule && p.Name == "stdlib" {
				// The go directive names the oldest Go that may build the
				// module, not the one that does: matching the standard
				// library against it reports vulnerabilities of toolchains
				// nobody uses (osv-scanner drops it for the same reason).
				// Go binaries record their real toolchain and keep it.
				continue
			}
			if p.Location.PathOrEmpty() == "" {
				p.Location = extractor.LocationFromPath(j.path)
			}
			r.pkgs = append(r.pkgs, p)
			r.kinds = append(r.kinds, n.kind)
		}
		if n.kind == goModule {
			inv, err := directGo.Extract(ctx, input())
			if err == nil {
				r.direct = map[string]bool{}
				for _, p := range inv.Packages {
					r.direct[p.Name+"@"+p.Version] = true
				}
			}
		}
	}
	return r
}

func readFile(fsys fs.FS, name string, size int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := bytes.NewBuffer(make([]byte, 0, size+1))
	if _, err := io.Copy(b, io.LimitReader(f, size+1<<20)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// convert turns an osv-scalibr package into ours.
func convert(p *extractor.Package) (report.Package, bool) {
	if p.Name == "" || p.Name == "unknown" {
		return report.Package{}, false
	}
	rp := report.Package{
		Name:      p.Name,
		Version:   p.Version,
		Ecosystem: p.Ecosystem().String(),
		Locations: []string{p.Location.PathOrEmpty()},
	}
	if pu := p.PURL(); pu != nil {
		rp.PURL = pu.String()
	}
	for _, l := range p.Licenses {
		l = strings.TrimSpace(l)
		if l != "" && !strings.EqualFold(l, "unknown") && !slices.Contains(rp.Licenses, l) {
			rp.Licenses = append(rp.Licenses, l)
		}
	}
	if m, ok := p.Metadata.(*archivemeta.Metadata); ok && m.SHA1 != "" {
		if raw, err := base64.StdEncoding.DecodeString(m.SHA1); err == nil && len(raw) == 20 {
			rp.Hashes = map[string]string{"SHA-1": hex.EncodeToString(raw)}
		}
	}
	return rp, true
}

func appendNew(dst []string, src ...string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}
