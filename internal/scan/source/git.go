package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// GitOptions select the history a GitSource scans.
type GitOptions struct {
	// Include are the revisions whose history is scanned (branch or tag
	// names, commit ids, anything `git rev-parse` resolves to a commit).
	// Empty means every ref of the repository.
	Include []string
	// Exclude are revisions whose history is left out: `--since REV` is
	// Exclude: []string{REV}. All-zero object ids (a push creating or
	// deleting a ref sends them) are ignored.
	Exclude []string
	// ExcludeRefs leaves out everything reachable from the repository's
	// refs. Push protection sets it, with Include the pushed new value and
	// Exclude the old one, to scan only the commits a push brings.
	ExcludeRefs bool
	// MaxFileSize skips larger blobs with a note; 0 means
	// DefaultMaxFileSize, a negative value no limit.
	MaxFileSize int64
}

// GitSource reads a git repository's history.
type GitSource struct {
	repo string
	opts GitOptions
}

var _ Source = (*GitSource)(nil)

// Git returns a Source over the history of the repository at repo (a
// work tree or a bare repository). Every distinct blob reachable from the
// selected commits is read once, straight from the object store, and
// attributed to the first commit (oldest first, parents before children)
// and path that introduced it. It runs the real git binary.
func Git(repo string, opts GitOptions) *GitSource {
	return &GitSource{repo: repo, opts: opts}
}

// blobMeta is what the history walk knows of a blob to read.
type blobMeta struct {
	oid      string
	path     string
	loc      report.Location
	baseline bool
}

// Walk implements Source.
func (g *GitSource) Walk(ctx context.Context, fn func(File) error) (report.Stats, []report.Note, error) {
	var (
		stats report.Stats
		notes []report.Note
	)
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return stats, nil, errors.New("scan git history: the git binary is not installed")
	}
	if out, err := g.git(ctx, gitBin, "rev-parse", "--git-dir"); err != nil {
		return stats, nil, fmt.Errorf("scan git history: %s is not a git repository: %s", g.repo, strings.TrimSpace(out))
	}
	args := []string{"-c", "core.quotepath=off", "log", "--raw", "-c", "-z", "--no-abbrev", "--reverse", "--topo-order",
		"--root", "--no-renames", "--no-ext-diff", "--no-textconv", "--no-show-signature", "--no-color",
		"--format=%x01%H%x00%at%x00%an%x00%ae"}
	if len(g.opts.Include) == 0 {
		args = append(args, "--all")
	}
	for _, rev := range g.opts.Include {
		id, err := g.resolve(ctx, gitBin, rev)
		if err != nil {
			return stats, nil, err
		}
		args = append(args, id)
	}
	var excl []string
	for _, rev := range g.opts.Exclude {
		if strings.Trim(rev, "0") == "" && len(rev) >= 40 {
			continue
		}
		id, err := g.resolve(ctx, gitBin, rev)
		if err != nil {
			return stats, nil, err
		}
		excl = append(excl, id)
	}
	if g.opts.ExcludeRefs {
		excl = append(excl, "--all")
	}
	if len(excl) > 0 {
		args = append(append(args, "--not"), excl...)
	}
	args = append(args, "--")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logCmd := exec.CommandContext(ctx, gitBin, append([]string{"-C", g.repo}, args...)...)
	var logErr bytes.Buffer
	logCmd.Stderr = &logErr
	logOut, err := logCmd.StdoutPipe()
	if err != nil {
		return stats, nil, err
	}
	catCmd := exec.CommandContext(ctx, gitBin, "-C", g.repo, "cat-file", "--batch")
	var catErr bytes.Buffer
	catCmd.Stderr = &catErr
	catIn, err := catCmd.StdinPipe()
	if err != nil {
		return stats, nil, err
	}
	catOut, err := catCmd.StdoutPipe()
	if err != nil {
		return stats, nil, err
	}
	if err := logCmd.Start(); err != nil {
		return stats, nil, fmt.Errorf("scan git history: %w", err)
	}
	if err := catCmd.Start(); err != nil {
		cancel()
		_ = logCmd.Wait()
		return stats, nil, fmt.Errorf("scan git history: %w", err)
	}

	// The producer walks the log and asks cat-file for each new blob; the
	// consumer (this goroutine) reads the answers in the same order.
	metas := make(chan blobMeta, 4096)
	var (
		wg      sync.WaitGroup
		prodErr error
		commits int64
	)
	wg.Go(func() {
		defer close(metas)
		w := bufio.NewWriterSize(catIn, 64<<10)
		commits, prodErr = parseLog(logOut, len(excl) > 0, func(m blobMeta) bool {
			select {
			case metas <- m:
			default:
				// About to wait for the consumer: let cat-file see what
				// it has been asked so far, or both would wait forever.
				if w.Flush() != nil {
					return false
				}
				select {
				case metas <- m:
				case <-ctx.Done():
					return false
				}
			}
			_, err := w.WriteString(m.oid + "\n")
			return err == nil
		})
		_ = w.Flush()
		_ = catIn.Close()
		if err := logCmd.Wait(); err != nil && prodErr == nil && ctx.Err() == nil {
			prodErr = fmt.Errorf("git log: %v: %s", err, strings.TrimSpace(logErr.String()))
		}
	})

	limit := GitOptions(g.opts).maxSize()
	r := bufio.NewReaderSize(catOut, 1<<20)
	var walkErr error
	for m := range metas {
		if walkErr != nil {
			continue // drain
		}
		if err := ctx.Err(); err != nil {
			walkErr = err
			cancel()
			continue
		}
		data, size, err := readBlob(r, m.oid, limit)
		if err != nil {
			walkErr = fmt.Errorf("git cat-file: %w: %s", err, strings.TrimSpace(catErr.String()))
			cancel()
			continue
		}
		if !m.baseline {
			stats.Blobs++
		}
		switch {
		case data == nil && size > limit, IsBinary(data):
			if m.baseline {
				continue
			}
			n := binaryNote(m.path)
			if data == nil {
				n = sizeNote(m.path, size, limit)
			}
			notes = append(notes, blobNote(n, m))
			stats.Skipped++
			continue
		case m.baseline:
			if err := fn(File{Path: m.path, Data: data, Loc: m.loc, Baseline: true}); err != nil {
				walkErr = err
				cancel()
			}
			continue
		}
		stats.Files++
		stats.Bytes += int64(len(data))
		if err := fn(File{Path: m.path, Data: data, Loc: m.loc}); err != nil {
			walkErr = err
			cancel()
		}
	}
	wg.Wait()
	_ = catIn.Close()
	catWait := catCmd.Wait()
	stats.Commits = commits
	if walkErr != nil {
		return stats, notes, walkErr
	}
	if err := ctx.Err(); err != nil {
		return stats, notes, err
	}
	if prodErr != nil {
		return stats, notes, fmt.Errorf("scan git history: %w", prodErr)
	}
	if catWait != nil {
		return stats, notes, fmt.Errorf("scan git history: git cat-file: %v: %s", catWait, strings.TrimSpace(catErr.String()))
	}
	return stats, notes, nil
}

func (o GitOptions) maxSize() int64 { return Options{MaxFileSize: o.MaxFileSize}.maxSize() }

func blobNote(n report.Note, m blobMeta) report.Note {
	n.Message += fmt.Sprintf(" (blob %.12s, commit %.12s)", m.oid, m.loc.Commit)
	return n
}

func (g *GitSource) git(ctx context.Context, gitBin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, gitBin, append([]string{"-C", g.repo}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// resolve turns a revision into a commit id, refusing anything that is
// not a plain revision.
func (g *GitSource) resolve(ctx context.Context, gitBin, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, "\x00\n") {
		return "", fmt.Errorf("scan git history: invalid revision %q", rev)
	}
	out, err := g.git(ctx, gitBin, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	id := strings.TrimSpace(out)
	if err != nil || id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("scan git history: unknown revision %q in %s", rev, g.repo)
	}
	return id, nil
}

// parseLog reads `git log --raw -c -z` output and calls blob for every
// blob a commit introduces that no earlier commit did. With baselines
// (the walk covers a range of history), a modified file's previous
// version is handed over first as a baseline when the range did not
// produce it. It returns the number of commits.
func parseLog(r io.Reader, baselines bool, blob func(blobMeta) bool) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	seen := map[string]struct{}{}
	var (
		commits int64
		loc     report.Location
	)
	next := func() (string, error) {
		s, err := br.ReadString(0)
		if err == io.EOF && s != "" {
			return s, nil
		}
		if err != nil {
			return "", err
		}
		return s[:len(s)-1], nil
	}
	for {
		tok, err := next()
		if err == io.EOF {
			return commits, nil
		}
		if err != nil {
			return commits, err
		}
		tok = strings.TrimLeft(tok, "\n")
		switch {
		case strings.HasPrefix(tok, "\x01"):
			var f [3]string
			for i := range f {
				if f[i], err = next(); err != nil {
					return commits, fmt.Errorf("truncated commit header: %w", err)
				}
			}
			commits++
			loc = report.Location{Commit: tok[1:], Author: f[1], AuthorEmail: f[2]}
			if sec, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				loc.Date = time.Unix(sec, 0).UTC()
			}
		case strings.HasPrefix(tok, ":"):
			path, err := next()
			if err != nil {
				return commits, fmt.Errorf("truncated raw diff line: %w", err)
			}
			oid, olds, ok := newBlob(tok)
			if !ok {
				continue
			}
			if _, dup := seen[oid]; dup {
				continue
			}
			seen[oid] = struct{}{}
			l := loc
			l.Path = path
			if baselines {
				for _, old := range olds {
					if _, dup := seen[old]; dup {
						continue
					}
					seen[old] = struct{}{}
					if !blob(blobMeta{oid: old, path: path, loc: l, baseline: true}) {
						return commits, nil
					}
				}
			}
			if !blob(blobMeta{oid: oid, path: path, loc: l}) {
				return commits, nil
			}
		}
	}
}

// newBlob returns the object a raw diff line (":mode mode oid oid status"
// or, for merges, "::mode mode mode oid oid oid status") leaves at its
// path, if that is a regular file, and the regular files the parents had
// there.
func newBlob(line string) (oid string, olds []string, ok bool) {
	parents := 0
	for parents < len(line) && line[parents] == ':' {
		parents++
	}
	f := strings.Fields(line[parents:])
	if parents == 0 || len(f) < 2*(parents+1)+1 {
		return "", nil, false
	}
	if !regularMode(f[parents]) {
		return "", nil, false // deleted, symbolic link, submodule
	}
	oid = f[2*parents+1]
	if !validOID(oid) {
		return "", nil, false
	}
	for p := range parents {
		if old := f[parents+1+p]; regularMode(f[p]) && validOID(old) {
			olds = append(olds, old)
		}
	}
	return oid, olds, true
}

func regularMode(m string) bool { return m == "100644" || m == "100755" || m == "100664" }

// validOID accepts a full, non-zero hexadecimal object id.
func validOID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
		zero = zero && c == '0'
	}
	return !zero
}

// readBlob reads one `git cat-file --batch` answer. A blob over limit is
// read past and returned as nil with its size.
func readBlob(r *bufio.Reader, oid string, limit int64) ([]byte, int64, error) {
	header, err := r.ReadString('\n')
	if err != nil {
		return nil, 0, fmt.Errorf("reading object %s: %w", oid, err)
	}
	f := strings.Fields(header)
	if len(f) == 2 && f[1] == "missing" {
		return nil, 0, fmt.Errorf("object %s is missing from the repository", oid)
	}
	if len(f) != 3 || f[0] != oid {
		return nil, 0, fmt.Errorf("unexpected answer %q for object %s", strings.TrimSpace(header), oid)
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return nil, 0, fmt.Errorf("bad size in %q", strings.TrimSpace(header))
	}
	if size > limit {
		if _, err := io.CopyN(io.Discard, r, size+1); err != nil {
			return nil, 0, err
		}
		return nil, size, nil
	}
	data := make([]byte, size+1)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, 0, err
	}
	return data[:size], size, nil
}
