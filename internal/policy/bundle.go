package policy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Files a bundle is made of, beside its Rego modules.
const (
	// ConfigFile holds settings and modes (see Config).
	ConfigFile = "policy.yaml"
	// ExceptionsFile holds exceptions (the exception object of
	// .rampart/ignore.yaml under the key "exceptions").
	ExceptionsFile = "exceptions.yaml"
)

// Limits of a bundle.
const (
	maxBundleFiles    = 2000
	maxBundleFileSize = 1 << 20
	maxBundleSize     = 32 << 20
)

// Bundle is one set of policies: the built-in library, a directory, or a
// commit of a policy repository.
type Bundle struct {
	// Name says where the bundle comes from ("builtin", a directory, a
	// repository and ref); file names in errors start with it.
	Name string
	// Revision names the exact content: "builtin@HASH", "dir@HASH" or
	// "git@COMMIT".
	Revision string
	// Files maps slash-separated paths to contents: *.rego modules (those
	// ending in _test.rego are tests), policy.yaml and exceptions.yaml.
	Files map[string][]byte
	// BuiltIn marks the library embedded in Rampart.
	BuiltIn bool
}

// file names a bundle file in messages.
func (b *Bundle) file(p string) string {
	if b.BuiltIn {
		return "library/" + p
	}
	return b.Name + ":" + p
}

// Source provides a bundle.
type Source interface {
	// Load reads the bundle as it is now.
	Load(ctx context.Context) (*Bundle, error)
}

// wanted reports whether a bundle keeps the file at p.
func wanted(p string) bool {
	return strings.HasSuffix(p, ".rego") || p == ConfigFile || p == ExceptionsFile
}

// contentHash hashes a bundle's files in path order.
func contentHash(files map[string][]byte) string {
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s;%d:", len(k), k, len(files[k]))
		h.Write(files[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

//go:embed library
var libraryFS embed.FS

// Builtin is the built-in library, embedded in the binary.
type Builtin struct{}

var _ Source = Builtin{}

var builtinBundle = sync.OnceValues(func() (*Bundle, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(libraryFS, "library", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "library/")
		if !wanted(rel) {
			return nil
		}
		b, err := libraryFS.ReadFile(p)
		files[rel] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Bundle{Name: "builtin", Revision: "builtin@" + contentHash(files), Files: files, BuiltIn: true}, nil
})

// Load returns the built-in library.
func (Builtin) Load(context.Context) (*Bundle, error) { return builtinBundle() }

// Dir reads a bundle from a directory on disk: every *.rego file under it,
// policy.yaml and exceptions.yaml at its root. Its revision hashes the
// content.
type Dir struct{ Path string }

var _ Source = Dir{}

// Load reads the directory.
func (d Dir) Load(ctx context.Context) (*Bundle, error) {
	fi, err := os.Stat(d.Path)
	if err != nil || !fi.IsDir() {
		return nil, apperr.E(apperr.Invalid, "policy directory %s: not a readable directory", d.Path)
	}
	files := map[string][]byte{}
	var total int
	err = filepath.WalkDir(d.Path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != d.Path && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return ctx.Err()
		}
		rel, err := filepath.Rel(d.Path, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !wanted(rel) || (!strings.HasSuffix(rel, ".rego") && strings.Contains(rel, "/")) || !e.Type().IsRegular() {
			return nil
		}
		if len(files) >= maxBundleFiles {
			return apperr.E(apperr.TooLarge, "policy directory %s has more than %d policy files", d.Path, maxBundleFiles)
		}
		b, err := readLimited(p, maxBundleFileSize)
		if err != nil {
			return err
		}
		if total += len(b); total > maxBundleSize {
			return apperr.E(apperr.TooLarge, "policy directory %s holds more than %d bytes of policy", d.Path, maxBundleSize)
		}
		files[rel] = b
		return nil
	})
	if err != nil {
		if apperr.KindOf(err) != apperr.Internal {
			return nil, err
		}
		return nil, apperr.Wrap(err, apperr.Invalid, "read policy directory "+d.Path+": "+err.Error())
	}
	return &Bundle{Name: d.Path, Revision: "dir@" + contentHash(files), Files: files}, nil
}

func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, apperr.E(apperr.TooLarge, "%s is larger than %d bytes", p, limit)
	}
	return b, nil
}

// Git reads a bundle from a ref of a git repository on disk (bare or not)
// with the git binary, without a checkout: the bundle's revision is the
// commit. This is how policies come from a policy repository in Rampart's
// own git hosting, changed through reviewed pull requests.
type Git struct {
	// Repo is the repository's path.
	Repo string
	// Ref is a branch, tag or commit (default HEAD).
	Ref string
	// Dir, when set, is the directory of the repository holding the
	// bundle.
	Dir string
	// GitBin is the git binary (default "git" from PATH).
	GitBin string
}

var _ Source = Git{}

var safeRef = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/@{}^~-]*$`)

func (g Git) git(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	bin := g.GitBin
	if bin == "" {
		bin = "git"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--git-dir", g.gitDir()}, args...)...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return nil, apperr.Wrap(err, apperr.Invalid, fmt.Sprintf("git %s in %s: %s", args[0], g.Repo, msg))
	}
	return out, nil
}

// gitDir is the repository's git directory: the path itself for a bare
// repository, else its .git.
func (g Git) gitDir() string {
	if fi, err := os.Stat(filepath.Join(g.Repo, ".git")); err == nil && fi.IsDir() {
		return filepath.Join(g.Repo, ".git")
	}
	return g.Repo
}

func (g Git) ref() (string, error) {
	ref := g.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if !safeRef.MatchString(ref) || strings.Contains(ref, "..") {
		return "", apperr.InvalidField("ref", "invalid git ref %q", ref)
	}
	return ref, nil
}

// Commit resolves the ref to its commit.
func (g Git) Commit(ctx context.Context) (string, error) {
	ref, err := g.ref()
	if err != nil {
		return "", err
	}
	out, err := g.git(ctx, nil, "rev-parse", "--verify", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Load reads the bundle at the ref's commit.
func (g Git) Load(ctx context.Context) (*Bundle, error) {
	commit, err := g.Commit(ctx)
	if err != nil {
		return nil, err
	}
	tree := commit
	if dir := strings.Trim(g.Dir, "/"); dir != "" {
		tree += ":" + dir
	}
	out, err := g.git(ctx, nil, "ls-tree", "-r", "-z", "--long", "--full-tree", tree)
	if err != nil {
		return nil, err
	}
	type entry struct {
		path, oid string
		size      int64
	}
	var entries []entry
	var total int64
	for rec := range bytes.SplitSeq(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		// <mode> SP <type> SP <object> SP+ <size> TAB <path>
		meta, p, ok := bytes.Cut(rec, []byte{'\t'})
		f := strings.Fields(string(meta))
		if !ok || len(f) != 4 || f[1] != "blob" || !wanted(string(p)) || (!strings.HasSuffix(string(p), ".rego") && bytes.Contains(p, []byte{'/'})) {
			continue
		}
		size, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			continue
		}
		if size > maxBundleFileSize {
			return nil, apperr.E(apperr.TooLarge, "%s@%s: %s is larger than %d bytes", g.Repo, commit[:12], p, maxBundleFileSize)
		}
		if total += size; total > maxBundleSize || len(entries) >= maxBundleFiles {
			return nil, apperr.E(apperr.TooLarge, "%s@%s: more than %d files or %d bytes of policy", g.Repo, commit[:12], maxBundleFiles, maxBundleSize)
		}
		entries = append(entries, entry{path: string(p), oid: f[2], size: size})
	}
	files := map[string][]byte{}
	if len(entries) > 0 {
		var in bytes.Buffer
		for _, e := range entries {
			in.WriteString(e.oid + "\n")
		}
		out, err := g.git(ctx, &in, "cat-file", "--batch")
		if err != nil {
			return nil, err
		}
		r := bufio.NewReader(bytes.NewReader(out))
		for _, e := range entries {
			header, err := r.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("read %s from %s: %w", e.path, g.Repo, err)
			}
			h := strings.Fields(header)
			if len(h) != 3 || h[0] != e.oid {
				return nil, fmt.Errorf("read %s from %s: unexpected cat-file header %q", e.path, g.Repo, header)
			}
			body := make([]byte, e.size+1) // the content and a newline
			if _, err := io.ReadFull(r, body); err != nil {
				return nil, fmt.Errorf("read %s from %s: %w", e.path, g.Repo, err)
			}
			files[e.path] = body[:e.size]
		}
	}
	name := filepath.Base(g.Repo) + "@" + commit[:12]
	if g.Dir != "" {
		name += ":" + path.Clean(g.Dir)
	}
	return &Bundle{Name: name, Revision: "git@" + commit, Files: files}, nil
}
