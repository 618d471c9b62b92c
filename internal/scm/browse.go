package scm

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Branch is a branch and its tip.
type Branch struct {
	Name      string
	SHA       string
	Protected bool
}

// Branches lists a repository's branches by name.
func (s *Service) Branches(ctx context.Context, r Repo) ([]Branch, error) {
	refs, err := s.refsAt(ctx, s.Path(r), nil)
	if err != nil {
		return nil, err
	}
	ps, err := s.Protections(ctx, r)
	if err != nil {
		return nil, err
	}
	var out []Branch
	for name, id := range refs {
		if b, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			out = append(out, Branch{Name: b, SHA: id, Protected: rulesFor(ps, b).protected})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Empty reports whether the repository has no commit yet.
func (s *Service) Empty(ctx context.Context, r Repo) (bool, error) {
	refs, err := s.refsAt(ctx, s.Path(r), nil)
	return len(refs) == 0, err
}

// resolveRef resolves a branch, tag or commit id given by a user.
func (s *Service) resolveRef(ctx context.Context, r Repo, ref string) (string, error) {
	if ref == "" {
		ref = r.DefaultBranch
	}
	if hexID(ref) {
		return s.resolveCommit(ctx, s.Path(r), nil, ref)
	}
	if err := ValidateBranchName(ref); err != nil {
		return "", err
	}
	for _, full := range []string{"refs/heads/" + ref, "refs/tags/" + ref} {
		if id, err := s.resolveCommit(ctx, s.Path(r), nil, full); err == nil {
			return id, nil
		}
	}
	return "", apperr.E(apperr.NotFound, "no branch or tag %q in %s", clip(ref, 80), r.FullName())
}

// Log lists the commits reachable from ref, newest first.
func (s *Service) Log(ctx context.Context, r Repo, ref string, limit int) ([]Commit, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	id, err := s.resolveRef(ctx, r, ref)
	if err != nil {
		return nil, err
	}
	out, err := s.gitIn(ctx, r, "log", "--max-count="+strconv.Itoa(limit), "--no-show-signature",
		"--format=%H%x00%an%x00%ae%x00%at%x00%B%x1e", id, "--")
	if err != nil {
		return nil, err
	}
	return parseCommitLog(string(out)), nil
}

// TreeEntry is one entry of a directory in a commit.
type TreeEntry struct {
	Name string
	Path string
	Type string // blob, tree, commit (submodule)
	Mode string
	Size int64
}

// validatePath checks a path inside a repository.
func validatePath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if len(p) > 4096 {
		return "", apperr.InvalidField("path", "path too long")
	}
	for part := range strings.SplitSeq(p, "/") {
		if part == ".." || part == "." || (part == "" && p != "") {
			return "", apperr.InvalidField("path", "invalid path %q", clip(p, 80))
		}
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", apperr.InvalidField("path", "path must not contain control characters")
	}
	return p, nil
}

// Tree lists the directory at path in the commit ref names.
func (s *Service) Tree(ctx context.Context, r Repo, ref, path string) ([]TreeEntry, string, error) {
	id, err := s.resolveRef(ctx, r, ref)
	if err != nil {
		return nil, "", err
	}
	path, err = validatePath(path)
	if err != nil {
		return nil, "", err
	}
	spec := id + "^{tree}"
	if path != "" {
		spec = id + ":" + path
	}
	out, err := s.gitIn(ctx, r, "ls-tree", "-z", "--long", spec)
	if err != nil {
		return nil, "", apperr.E(apperr.NotFound, "no directory %q at %s", clip(path, 80), short(id))
	}
	var es []TreeEntry
	for rec := range strings.SplitSeq(string(out), "\x00") {
		meta, name, ok := strings.Cut(rec, "\t")
		if !ok {
			continue
		}
		f := strings.Fields(meta)
		if len(f) != 4 {
			continue
		}
		size, _ := strconv.ParseInt(f[3], 10, 64)
		p := name
		if path != "" {
			p = path + "/" + name
		}
		es = append(es, TreeEntry{Name: name, Path: p, Type: f[1], Mode: f[0], Size: size})
	}
	sort.SliceStable(es, func(i, j int) bool {
		if (es[i].Type == "tree") != (es[j].Type == "tree") {
			return es[i].Type == "tree"
		}
		return es[i].Name < es[j].Name
	})
	return es, id, nil
}

// maxBlobView caps the file content pages show.
const maxBlobView = 1 << 20

// Blob returns the content of the file at path in ref (at most 1 MiB;
// truncated reports a longer file).
func (s *Service) Blob(ctx context.Context, r Repo, ref, path string) (data []byte, commit string, truncated bool, err error) {
	id, err := s.resolveRef(ctx, r, ref)
	if err != nil {
		return nil, "", false, err
	}
	path, err = validatePath(path)
	if err != nil || path == "" {
		return nil, "", false, apperr.InvalidField("path", "give a file path")
	}
	sizeOut, err := s.gitIn(ctx, r, "cat-file", "-s", id+":"+path)
	if err != nil {
		return nil, "", false, apperr.E(apperr.NotFound, "no file %q at %s", clip(path, 80), short(id))
	}
	size, _ := strconv.ParseInt(strings.TrimSpace(string(sizeOut)), 10, 64)
	if size > maxBlobView {
		return nil, id, true, nil
	}
	data, err = s.gitIn(ctx, r, "cat-file", "blob", id+":"+path)
	if err != nil {
		return nil, "", false, apperr.E(apperr.NotFound, "%q is not a file at %s", clip(path, 80), short(id))
	}
	return data, id, false, nil
}
