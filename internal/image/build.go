package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rampartsec/rampart/internal/apperr"
)

// BuildOptions say what to build.
type BuildOptions struct {
	// ContextDir is the build context: COPY and ADD read from it.
	ContextDir string
	// Dockerfile is the Dockerfile's path, relative to ContextDir unless
	// absolute (default "Dockerfile").
	Dockerfile string
	// DockerfileText, when set, is used instead of reading Dockerfile
	// (Dockerfile then only names it in errors and provenance).
	DockerfileText []byte
	// BuildArgs override ARG defaults (docker build --build-arg).
	BuildArgs map[string]string
	// Target is the stage to build (default the last).
	Target string
	// Platform of the image, "os/arch[/variant]" (default linux and the
	// architecture Rampart runs on). Bases are resolved for it.
	Platform string
	// Bases resolves FROM and COPY --from images (default a Resolver
	// reading public registries anonymously).
	Bases BaseResolver
	// Epoch is the time written into the image (SOURCE_DATE_EPOCH); zero
	// means 1970-01-01T00:00:00Z.
	Epoch time.Time
	// Limits bound the build (zero fields: DefaultLimits).
	Limits Limits
}

// Material is an input of a build that is not in the context: a base
// image, or the source commit.
type Material struct {
	// URI names it: an image reference as written in FROM, an oci-layout:
	// or tarball: location.
	URI string `json:"uri"`
	// Digest of its manifest.
	Digest v1.Hash `json:"digest"`
}

// Result is a built image and what went into it.
type Result struct {
	// Image is the built image, held in memory (its base layers may be
	// fetched lazily from their registry).
	Image v1.Image
	// Digest of the image manifest.
	Digest v1.Hash
	// Platform built for.
	Platform v1.Platform
	// Materials are the base images resolved, in the order first used.
	Materials []Material
	// Dockerfile is the path named in BuildOptions (for provenance).
	Dockerfile string
	// BuildArgs and Target as given.
	BuildArgs map[string]string
	Target    string
}

// stage is the state of one stage being built.
type stage struct {
	name     string
	img      v1.Image
	cfg      v1.Config
	history  []v1.History
	args     map[string]string // declared ARGs in scope
	cmdSet   bool              // CMD set in this stage
	workdir  string
	dirs     map[string]bool // known paths of the stage's filesystem (true: directory), lazily read
	layers   int
	newLayer []v1.Layer
}

func (s *stage) lookup(name string) (string, bool) {
	for _, kv := range slices.Backward(s.cfg.Env) {
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	v, ok := s.args[name]
	return v, ok
}

func (s *stage) setEnv(k, v string) {
	s.cfg.Env = slices.DeleteFunc(s.cfg.Env, func(kv string) bool {
		key, _, _ := strings.Cut(kv, "=")
		return key == k
	})
	s.cfg.Env = append(s.cfg.Env, k+"="+v)
}

// builder holds one build.
type builder struct {
	opts      BuildOptions
	df        *Dockerfile
	lim       Limits
	ctxTree   *tree
	platform  v1.Platform
	global    map[string]string
	stages    []*stage
	trees     map[int]*tree
	materials []Material
	epoch     v1.Time
}

// Build builds an image from a Dockerfile of the supported subset. Nothing
// is written anywhere: the result is in memory until WriteLayout or Push.
func Build(ctx context.Context, opts BuildOptions) (*Result, error) {
	if opts.ContextDir == "" {
		return nil, apperr.E(apperr.Invalid, "no build context given")
	}
	if opts.Dockerfile == "" {
		opts.Dockerfile = "Dockerfile"
	}
	text := opts.DockerfileText
	if text == nil {
		p := opts.Dockerfile
		if !filepath.IsAbs(p) {
			p = filepath.Join(opts.ContextDir, p)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "cannot read "+opts.Dockerfile)
		}
		text, err = io.ReadAll(io.LimitReader(f, MaxDockerfileSize+1))
		f.Close()
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "cannot read "+opts.Dockerfile)
		}
	}
	df, err := Parse(opts.Dockerfile, text)
	if err != nil {
		return nil, err
	}
	return BuildParsed(ctx, df, opts)
}

// BuildParsed builds an already parsed Dockerfile.
func BuildParsed(ctx context.Context, df *Dockerfile, opts BuildOptions) (*Result, error) {
	b := &builder{opts: opts, df: df, lim: opts.Limits.withDefaults(), trees: map[int]*tree{}}
	if b.opts.Bases == nil {
		b.opts.Bases = &Resolver{}
	}
	b.epoch = v1.Time{Time: time.Unix(0, 0).UTC()}
	if !opts.Epoch.IsZero() {
		b.epoch = v1.Time{Time: opts.Epoch.UTC().Truncate(time.Second)}
	}
	p := opts.Platform
	if p == "" {
		p = "linux/" + runtime.GOARCH
	}
	plat, err := v1.ParsePlatform(p)
	if err != nil || plat.OS == "" || plat.Architecture == "" {
		return nil, apperr.E(apperr.Invalid, "invalid platform %q (want os/arch[/variant])", p)
	}
	b.platform = *plat
	for k := range opts.BuildArgs {
		if !validName(k) {
			return nil, apperr.E(apperr.Invalid, "invalid build argument name %q", k)
		}
	}

	target := len(df.Stages) - 1
	if opts.Target != "" {
		target = -1
		for _, s := range df.Stages {
			if s.Name == strings.ToLower(opts.Target) {
				target = s.Index
			}
		}
		if target < 0 {
			return nil, apperr.E(apperr.Invalid, "%s has no stage named %q", df.Name, opts.Target)
		}
	}

	// Global ARGs (before the first FROM), plus the platform ARGs BuildKit
	// predefines.
	b.global = map[string]string{
		"TARGETPLATFORM": b.platform.OS + "/" + b.platform.Architecture + variantSuffix(b.platform.Variant),
		"TARGETOS":       b.platform.OS,
		"TARGETARCH":     b.platform.Architecture,
		"TARGETVARIANT":  b.platform.Variant,
	}
	for _, in := range df.GlobalArgs {
		if err := b.arg(in, b.global, expander{esc: df.Escape, lookup: mapLookup(b.global)}, nil); err != nil {
			return nil, err
		}
	}

	if b.ctxTree, err = loadContext(opts.ContextDir, b.lim); err != nil {
		return nil, err
	}

	for i := 0; i <= target; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := b.buildStage(ctx, df.Stages[i])
		if err != nil {
			return nil, err
		}
		b.stages = append(b.stages, s)
	}
	img := b.stages[target].img
	d, err := img.Digest()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "digest of the built image")
	}
	return &Result{Image: img, Digest: d, Platform: b.platform, Materials: b.materials,
		Dockerfile: opts.Dockerfile, BuildArgs: opts.BuildArgs, Target: opts.Target}, nil
}

func variantSuffix(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

func mapLookup(m map[string]string) lookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func validName(s string) bool {
	if s == "" || !isNameStart(rune(s[0])) {
		return false
	}
	for _, r := range s {
		if !isNameRune(r) {
			return false
		}
	}
	return true
}

func (b *builder) errf(in Instruction, format string, args ...any) error {
	return lineError(b.df.Name, in.Line, "%s", fmt.Sprintf(format, args...))
}

// arg evaluates an ARG instruction into scope. global, when not nil, holds
// the defaults of the global scope an ARG without value inherits.
func (b *builder) arg(in Instruction, scope map[string]string, ex expander, global map[string]string) error {
	words, err := ex.words(in.Args[0])
	if err != nil {
		return b.errf(in, "ARG: %v", err)
	}
	for _, w := range words {
		name, def, hasDef := strings.Cut(w, "=")
		if !validName(name) {
			return b.errf(in, "ARG: invalid name %q", name)
		}
		switch v, given := b.opts.BuildArgs[name]; {
		case given:
			scope[name] = v
		case hasDef:
			scope[name] = def
		case global != nil:
			if gv, ok := global[name]; ok {
				scope[name] = gv
			}
		}
	}
	return nil
}

func (b *builder) buildStage(ctx context.Context, st Stage) (*stage, error) {
	gex := expander{esc: b.df.Escape, lookup: mapLookup(b.global)}
	from := st.From
	ref, err := gex.word(from.Args[0])
	if err != nil || ref == "" {
		return nil, b.errf(from, "FROM: cannot expand %q: %v", from.Args[0], err)
	}
	plat := b.platform
	if pf, ok := from.Flags["platform"]; ok {
		pv, err := gex.word(pf)
		if err != nil {
			return nil, b.errf(from, "FROM --platform: %v", err)
		}
		p, err := v1.ParsePlatform(pv)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, b.errf(from, "FROM --platform: invalid platform %q", pv)
		}
		plat = *p
	}
	s := &stage{name: st.Name, args: map[string]string{}}
	switch {
	case strings.EqualFold(ref, "scratch"):
		s.img = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		cf := &v1.ConfigFile{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant,
			RootFS: v1.RootFS{Type: "layers"}}
		if s.img, err = mutate.ConfigFile(s.img, cf); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "scratch image")
		}
	default:
		if prev := b.stageRef(ref, st.Index); prev != nil {
			s.img = prev.img
			break
		}
		img, mat, err := b.opts.Bases.Resolve(ctx, ref, plat)
		if err != nil {
			return nil, lineErrorKind(err, b.df.Name, from.Line, "FROM %s: %s", ref, apperr.Message(err))
		}
		s.img = img
		b.addMaterial(mat)
	}
	cf, err := s.img.ConfigFile()
	if err != nil {
		return nil, b.errf(from, "FROM %s: cannot read the image configuration", ref)
	}
	s.cfg = *cf.Config.DeepCopy()
	s.history = slices.Clone(cf.History)
	s.workdir = s.cfg.WorkingDir
	if m, err := s.img.Manifest(); err == nil {
		s.layers = len(m.Layers)
	}

	ex := expander{esc: b.df.Escape, lookup: s.lookup}
	for _, in := range st.Instructions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		empty := true
		switch in.Cmd {
		case "arg":
			err = b.arg(in, s.args, ex, b.global)
		case "env":
			err = b.pairs(in, ex, "ENV", s.setEnv)
		case "label":
			err = b.pairs(in, ex, "LABEL", func(k, v string) {
				if s.cfg.Labels == nil {
					s.cfg.Labels = map[string]string{}
				}
				s.cfg.Labels[k] = v
			})
		case "workdir":
			var w string
			if w, err = ex.word(in.Args[0]); err == nil {
				if w == "" {
					err = errors.New("empty path")
				} else {
					if !path.IsAbs(w) {
						w = path.Join("/", s.workdir, w)
					}
					s.workdir = path.Clean(w)
					s.cfg.WorkingDir = s.workdir
				}
			}
			if err != nil {
				err = b.errf(in, "WORKDIR: %v", err)
			}
		case "user":
			var u string
			if u, err = ex.word(in.Args[0]); err == nil && u == "" {
				err = errors.New("empty user")
			}
			if err != nil {
				err = b.errf(in, "USER: %v", err)
			}
			s.cfg.User = u
		case "expose":
			err = b.expose(in, ex, s)
		case "cmd":
			s.cfg.Cmd = command(in)
			s.cmdSet = true
		case "entrypoint":
			s.cfg.Entrypoint = command(in)
			if !s.cmdSet {
				s.cfg.Cmd = nil
			}
		case "copy", "add":
			empty = false
			err = b.copy(ctx, in, ex, s)
		}
		if err != nil {
			return nil, err
		}
		if empty {
			s.history = append(s.history, v1.History{Created: b.epoch, CreatedBy: in.Original, EmptyLayer: true})
		}
	}
	if s.layers > b.lim.Layers {
		return nil, b.errf(from, "stage %s has %d layers, more than the limit of %d", stageLabel(st), s.layers, b.lim.Layers)
	}
	img := s.img
	if len(s.newLayer) > 0 {
		adds := make([]mutate.Addendum, len(s.newLayer))
		for i, l := range s.newLayer {
			adds[i] = mutate.Addendum{Layer: l}
		}
		if img, err = mutate.Append(img, adds...); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "append layers")
		}
	}
	cf, err = img.ConfigFile()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "config of the built image")
	}
	cf = cf.DeepCopy()
	cf.Config = s.cfg
	cf.History = s.history
	cf.Created = b.epoch
	cf.Author = ""
	cf.Container, cf.DockerVersion = "", ""
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "set the image configuration")
	}
	s.img = img
	s.newLayer = nil
	s.dirs = nil
	return s, nil
}

func stageLabel(st Stage) string {
	if st.Name != "" {
		return st.Name
	}
	return strconv.Itoa(st.Index)
}

// stageRef returns the earlier stage ref names (by AS name or index).
func (b *builder) stageRef(ref string, before int) *stage {
	for i, s := range b.stages {
		if i >= before {
			break
		}
		if s.name != "" && s.name == strings.ToLower(ref) || strconv.Itoa(i) == ref {
			return s
		}
	}
	return nil
}

func (b *builder) addMaterial(m Material) {
	for _, x := range b.materials {
		if x == m {
			return
		}
	}
	b.materials = append(b.materials, m)
}

func command(in Instruction) []string {
	if in.JSON {
		return slices.Clone(in.Args)
	}
	return []string{"/bin/sh", "-c", in.Args[0]}
}

// pairs evaluates the key=value pairs of ENV and LABEL (and the legacy
// "ENV key value" form). Every value is expanded with the variables as they
// were before the instruction.
func (b *builder) pairs(in Instruction, ex expander, what string, set func(k, v string)) error {
	raw := in.Args[0]
	first := strings.Fields(raw)[0]
	if !strings.Contains(first, "=") {
		rest := strings.TrimSpace(strings.TrimPrefix(raw, first))
		if rest == "" {
			return b.errf(in, "%s %s needs a value (%s key=value)", what, first, what)
		}
		k, err := ex.word(first)
		if err != nil {
			return b.errf(in, "%s: %v", what, err)
		}
		v, err := ex.word(rest)
		if err != nil {
			return b.errf(in, "%s: %v", what, err)
		}
		if what == "ENV" && !validName(k) {
			return b.errf(in, "ENV: invalid name %q", k)
		}
		set(k, v)
		return nil
	}
	words, err := ex.words(raw)
	if err != nil {
		return b.errf(in, "%s: %v", what, err)
	}
	type kv struct{ k, v string }
	var out []kv
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return b.errf(in, "%s: %q is not key=value", what, w)
		}
		if what == "ENV" && !validName(k) {
			return b.errf(in, "ENV: invalid name %q", k)
		}
		out = append(out, kv{k, v})
	}
	for _, p := range out {
		set(p.k, p.v)
	}
	return nil
}

func (b *builder) expose(in Instruction, ex expander, s *stage) error {
	words, err := ex.words(in.Args[0])
	if err != nil {
		return b.errf(in, "EXPOSE: %v", err)
	}
	for _, w := range words {
		port, proto, hasProto := strings.Cut(strings.ToLower(w), "/")
		if !hasProto {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return b.errf(in, "EXPOSE %s: protocol must be tcp, udp or sctp", w)
		}
		lo, hi, isRange := strings.Cut(port, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
			return b.errf(in, "EXPOSE %s: not a port or port range (1-65535)", w)
		}
		if s.cfg.ExposedPorts == nil {
			s.cfg.ExposedPorts = map[string]struct{}{}
		}
		s.cfg.ExposedPorts[port+"/"+proto] = struct{}{}
	}
	return nil
}

// layerEntry is one member of a layer being built.
type layerEntry struct {
	typ      byte
	mode     fs.FileMode
	uid, gid int
	link     string
	src      *node
}

func (b *builder) copy(ctx context.Context, in Instruction, ex expander, s *stage) error {
	what := strings.ToUpper(in.Cmd)
	var args []string
	var err error
	if in.JSON {
		for _, a := range in.Args {
			w, err := ex.word(a)
			if err != nil {
				return b.errf(in, "%s: %v", what, err)
			}
			args = append(args, w)
		}
	} else if args, err = ex.words(in.Args[0]); err != nil {
		return b.errf(in, "%s: %v", what, err)
	}
	if len(args) < 2 {
		return b.errf(in, "%s wants at least one source and a destination", what)
	}
	srcs, dest := args[:len(args)-1], args[len(args)-1]
	if dest == "" {
		return b.errf(in, "%s: empty destination", what)
	}

	// Ownership and permissions.
	owner := (*[2]int)(nil)
	if v, ok := in.Flags["chown"]; ok {
		o, err := ex.word(v)
		if err != nil {
			return b.errf(in, "%s --chown: %v", what, err)
		}
		ids, err := b.chown(ctx, s, o)
		if err != nil {
			return b.errf(in, "%s --chown=%s: %s", what, o, apperr.Message(err))
		}
		owner = &ids
	}
	var chmod *fs.FileMode
	if v, ok := in.Flags["chmod"]; ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return b.errf(in, "%s --chmod=%s: want an octal mode such as 0755", what, v)
		}
		fm := fileMode(int64(m))
		chmod = &fm
	}

	// Where to read from.
	src := b.ctxTree
	if from, ok := in.Flags["from"]; ok {
		f, err := ex.word(from)
		if err != nil || f == "" {
			return b.errf(in, "COPY --from: cannot expand %q", from)
		}
		if src, err = b.fromTree(ctx, in, f, s); err != nil {
			return err
		}
	}

	if !path.IsAbs(dest) {
		trailing := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
		dest = path.Join("/", s.workdir, dest)
		if trailing {
			dest += "/"
		}
	}
	destIsDir := strings.HasSuffix(dest, "/")
	dest = path.Clean(dest)

	entries := map[string]layerEntry{}
	var files int
	var bytes int64
	put := func(name string, e layerEntry) error {
		name = strings.TrimPrefix(path.Clean(name), "/")
		if name == "" || name == "." {
			return nil // the root directory itself
		}
		if owner != nil {
			e.uid, e.gid = owner[0], owner[1]
		}
		if chmod != nil && e.typ != tar.TypeSymlink {
			e.mode = *chmod
		}
		if _, dup := entries[name]; !dup {
			files++
		}
		if files > b.lim.Files {
			return b.errf(in, "%s: more than %d files (limit)", what, b.lim.Files)
		}
		if e.src != nil {
			bytes += e.src.size
			if bytes > b.lim.LayerBytes {
				return b.errf(in, "%s: layer larger than %d bytes (limit)", what, b.lim.LayerBytes)
			}
		}
		entries[name] = e
		return nil
	}

	type match struct {
		rel  string
		node *node
	}
	var matches []match
	hasGlob := false
	for _, sp := range srcs {
		if in.Cmd == "add" && isURL(sp) {
			return b.errf(in, "ADD %s: remote URLs are not supported; download it in a pipeline step and COPY the file", sp)
		}
		rel, err := b.sourcePath(in, src, sp)
		if err != nil {
			return err
		}
		if strings.ContainsAny(rel, "*?[") {
			hasGlob = true
			n := 0
			for _, p := range src.below(".") {
				ok, err := path.Match(rel, p)
				if err != nil {
					return b.errf(in, "%s %s: bad pattern", what, sp)
				}
				if ok {
					rp, nd, err := src.resolve(p, true)
					if err != nil {
						return b.errf(in, "%s %s: %s", what, sp, apperr.Message(err))
					}
					matches = append(matches, match{rp, nd})
					n++
				}
			}
			if n == 0 {
				return b.errf(in, "%s %s: no file in %s matches", what, sp, src.what)
			}
			continue
		}
		rp, nd, err := src.resolve(rel, true)
		if err != nil {
			return b.errf(in, "%s %s: %s", what, sp, apperr.Message(err))
		}
		if nd == nil {
			hint := ""
			if src == b.ctxTree {
				hint = " (or excluded by .dockerignore)"
			}
			return b.errf(in, "%s %s: not found in %s%s", what, sp, src.what, hint)
		}
		matches = append(matches, match{rp, nd})
	}
	if (len(srcs) > 1 || hasGlob) && !destIsDir {
		return b.errf(in, "%s with several sources needs a destination directory ending with /", what)
	}
	if !destIsDir && len(matches) == 1 && !matches[0].node.mode.IsDir() {
		isDir, err := b.isDir(s, dest)
		if err != nil {
			return b.errf(in, "%s: %s", what, apperr.Message(err))
		}
		destIsDir = isDir
	}

	for _, m := range matches {
		n := m.node
		switch {
		case n.mode.IsDir():
			if err := put(dest, layerEntry{typ: tar.TypeDir, mode: n.mode.Perm() | n.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)}); err != nil {
				return err
			}
			for _, p := range src.below(m.rel) {
				c := src.nodes[p]
				rel := strings.TrimPrefix(p, m.rel+"/")
				if m.rel == "." {
					rel = p
				}
				e, err := b.entryFor(in, src, p, c)
				if err != nil {
					return err
				}
				if err := put(path.Join(dest, rel), e); err != nil {
					return err
				}
			}
		case in.Cmd == "add" && src == b.ctxTree:
			arch, err := openArchive(n)
			if err != nil {
				return b.errf(in, "ADD %s: %s", m.rel, apperr.Message(err))
			}
			if arch != nil {
				t, err := treeFromTar("archive "+m.rel, false, arch, b.lim)
				arch.Close()
				if err != nil {
					return b.errf(in, "ADD %s: %s", m.rel, apperr.Message(err))
				}
				for _, p := range t.below(".") {
					c := t.nodes[p]
					e := layerEntry{typ: tarType(c), mode: c.mode, uid: c.uid, gid: c.gid, link: c.link}
					if c.mode.IsRegular() {
						e.src = c
					}
					if err := put(path.Join(dest, p), e); err != nil {
						return err
					}
				}
				continue
			}
			fallthrough
		default:
			target := dest
			if destIsDir {
				target = path.Join(dest, path.Base(m.rel))
			}
			e, err := b.entryFor(in, src, m.rel, n)
			if err != nil {
				return err
			}
			if err := put(target, e); err != nil {
				return err
			}
		}
	}
	layer, err := b.layer(in, s, entries)
	if err != nil {
		return err
	}
	s.newLayer = append(s.newLayer, layer)
	s.layers++
	if s.layers > b.lim.Layers {
		return b.errf(in, "more than %d layers (limit)", b.lim.Layers)
	}
	s.history = append(s.history, v1.History{Created: b.epoch, CreatedBy: in.Original})
	if s.dirs != nil {
		for name, e := range entries {
			s.dirs["/"+name] = e.typ == tar.TypeDir
		}
	}
	return nil
}

func isURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "git@") || strings.HasPrefix(l, "git://")
}

// sourcePath checks a COPY source against its tree: the build context
// takes relative paths that stay inside it; a stage takes any path.
func (b *builder) sourcePath(in Instruction, t *tree, sp string) (string, error) {
	what := strings.ToUpper(in.Cmd)
	if sp == "" {
		return "", b.errf(in, "%s: empty source", what)
	}
	if t.confined {
		if path.IsAbs(sp) {
			return "", b.errf(in, "%s %s: absolute source paths are not allowed in the build context (write it relative to the context)", what, sp)
		}
		c := path.Clean(sp)
		if c == ".." || strings.HasPrefix(c, "../") {
			return "", b.errf(in, "%s %s: points outside the build context", what, sp)
		}
		return c, nil
	}
	c := strings.TrimPrefix(path.Clean("/"+sp), "/")
	if c == "" {
		c = "."
	}
	return c, nil
}

// entryFor makes the layer entry copying node n (at p in t). A symbolic
// link inside the build context must point inside it.
func (b *builder) entryFor(in Instruction, t *tree, p string, n *node) (layerEntry, error) {
	switch {
	case n.mode.IsDir():
		return layerEntry{typ: tar.TypeDir, mode: n.mode.Perm() | n.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)}, nil
	case n.mode&fs.ModeSymlink != 0:
		if t.confined {
			if _, err := t.linkTarget(p, n.link); err != nil {
				return layerEntry{}, b.errf(in, "%s: %s", strings.ToUpper(in.Cmd), apperr.Message(err))
			}
		}
		return layerEntry{typ: tar.TypeSymlink, mode: 0o777, link: n.link}, nil
	default:
		return layerEntry{typ: tar.TypeReg, mode: n.mode.Perm() | n.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), src: n}, nil
	}
}

func tarType(n *node) byte {
	switch {
	case n.mode.IsDir():
		return tar.TypeDir
	case n.mode&fs.ModeSymlink != 0:
		return tar.TypeSymlink
	default:
		return tar.TypeReg
	}
}

func fileMode(m int64) fs.FileMode {
	fm := fs.FileMode(m).Perm()
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

func tarMode(m fs.FileMode) int64 {
	out := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// fromTree returns the filesystem COPY --from reads: an earlier stage (by
// name or index) or an image.
func (b *builder) fromTree(ctx context.Context, in Instruction, from string, s *stage) (*tree, error) {
	var img v1.Image
	key := -1
	label := "image " + from
	for i, st := range b.stages {
		if st.name != "" && st.name == strings.ToLower(from) || strconv.Itoa(i) == from {
			img, key, label = st.img, i, "stage "+from
		}
	}
	if img == nil {
		if _, err := strconv.Atoi(from); err == nil {
			return nil, b.errf(in, "COPY --from=%s: no earlier stage has that index", from)
		}
		if strings.EqualFold(from, s.name) && s.name != "" {
			return nil, b.errf(in, "COPY --from=%s: a stage cannot copy from itself", from)
		}
		i, mat, err := b.opts.Bases.Resolve(ctx, from, b.platform)
		if err != nil {
			return nil, lineErrorKind(err, b.df.Name, in.Line, "COPY --from=%s: %s", from, apperr.Message(err))
		}
		img = i
		b.addMaterial(mat)
	}
	if t, ok := b.trees[key]; ok && key >= 0 {
		return t, nil
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	t, err := treeFromTar(label, false, rc, b.lim)
	if err != nil {
		return nil, b.errf(in, "COPY --from=%s: %s", from, apperr.Message(err))
	}
	if key >= 0 {
		b.trees[key] = t
	}
	return t, nil
}

// isDir reports whether p is a directory in the stage's filesystem so far.
func (b *builder) isDir(s *stage, p string) (bool, error) {
	if s.dirs == nil {
		s.dirs = map[string]bool{}
		rc := mutate.Extract(s.img)
		defer rc.Close()
		tr := tar.NewReader(rc)
		n := 0
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return false, apperr.Wrap(err, apperr.Invalid, "read the base image's layers")
			}
			n++
			if n > 4*b.lim.Files {
				return false, apperr.E(apperr.TooLarge, "base image has more than %d files", 4*b.lim.Files)
			}
			s.dirs[path.Clean("/"+h.Name)] = h.Typeflag == tar.TypeDir
		}
		// New layers of this stage not yet appended.
		for _, l := range s.newLayer {
			if err := layerDirs(l, s.dirs); err != nil {
				return false, err
			}
		}
	}
	return s.dirs[p], nil
}

func layerDirs(l v1.Layer, dirs map[string]bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "read layer")
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return apperr.Wrap(err, apperr.Internal, "read layer")
		}
		dirs[path.Clean("/"+h.Name)] = h.Typeflag == tar.TypeDir
	}
}

// layer writes entries as one reproducible layer: sorted names, fixed
// times, no user or group names.
func (b *builder) layer(in Instruction, s *stage, entries map[string]layerEntry) (v1.Layer, error) {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := b.epoch.Time
	for _, n := range names {
		e := entries[n]
		h := &tar.Header{Typeflag: e.typ, Name: n, Mode: tarMode(e.mode), Uid: e.uid, Gid: e.gid, ModTime: mtime, Linkname: e.link}
		if e.typ == tar.TypeDir {
			h.Name += "/"
		}
		if e.src != nil {
			h.Size = e.src.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, b.errf(in, "%s: cannot write %s: %v", strings.ToUpper(in.Cmd), n, err)
		}
		if e.src != nil {
			rc, err := e.src.open()
			if err != nil {
				if apperr.KindOf(err) != apperr.Internal {
					return nil, lineErrorKind(err, b.df.Name, in.Line, "%s: %s", strings.ToUpper(in.Cmd), apperr.Message(err))
				}
				return nil, &apperr.Error{Kind: apperr.Invalid, Msg: fmt.Sprintf("%s:%d: %s: cannot read %s", b.df.Name, in.Line, strings.ToUpper(in.Cmd), n), Err: err}
			}
			_, err = io.Copy(tw, io.LimitReader(rc, e.src.size))
			rc.Close()
			if err != nil {
				return nil, b.errf(in, "%s: cannot read %s", strings.ToUpper(in.Cmd), n)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, b.errf(in, "%s: %v", strings.ToUpper(in.Cmd), err)
	}
	data := buf.Bytes()
	mt := types.OCILayer
	if m, err := s.img.MediaType(); err == nil && m == types.DockerManifestSchema2 {
		mt = types.DockerLayer
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt), tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "make layer")
	}
	return l, nil
}

// DirectoryDockerfile is the Dockerfile of a build that copies the whole
// context directory onto base at dest: an image from a directory and a
// base image, without writing a Dockerfile. Pass it as
// BuildOptions.DockerfileText.
func DirectoryDockerfile(base, dest string, entrypoint []string) ([]byte, error) {
	if base == "" || strings.ContainsAny(base, " \t\n") {
		return nil, apperr.E(apperr.Invalid, "invalid base image %q", base)
	}
	if !path.IsAbs(dest) || strings.ContainsAny(dest, "\n\"$\\") {
		return nil, apperr.E(apperr.Invalid, "the destination must be an absolute path, not %q", dest)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\nCOPY [\".\", %q]\nWORKDIR %s\n", base, strings.TrimSuffix(dest, "/")+"/", dest)
	if len(entrypoint) > 0 {
		ep, err := json.Marshal(entrypoint)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "entrypoint")
		}
		fmt.Fprintf(&b, "ENTRYPOINT %s\n", ep)
	}
	return []byte(b.String()), nil
}
