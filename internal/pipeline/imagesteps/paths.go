package imagesteps

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rampartsec/rampart/internal/apperr"
)

// maxRef bounds image references and paths given to the steps.
const maxRef = 1024

// inside resolves rel (slash-separated, relative) inside the workspace,
// refusing absolute paths, .. and symbolic links that lead out of it.
func inside(workspace, rel, what string) (string, error) {
	if rel == "" || len(rel) > maxRef || strings.ContainsRune(rel, 0) {
		return "", apperr.E(apperr.Invalid, "%s: %q is not a workspace path", what, rel)
	}
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return "", apperr.E(apperr.Invalid, "%s %q must be a relative path inside the workspace", what, rel)
	}
	root, err := filepath.EvalSymlinks(workspace)
	if err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "workspace")
	}
	p, err := filepath.EvalSymlinks(filepath.Join(root, local))
	if err != nil {
		return "", apperr.E(apperr.Invalid, "%s %q does not exist in the workspace", what, rel)
	}
	if r, err := filepath.Rel(root, p); err != nil || !filepath.IsLocal(r) && r != "." {
		return "", apperr.E(apperr.Invalid, "%s %q leads out of the workspace", what, rel)
	}
	return p, nil
}

// checkTag accepts the tag of build-image: an image reference with a tag
// (app:1, team/app:1), no digest.
func checkTag(tag string) error {
	if tag == "" || len(tag) > maxRef {
		return apperr.E(apperr.Invalid, "build-image: tag %q: give NAME:TAG", tag)
	}
	slash := strings.LastIndex(tag, "/")
	if _, err := name.NewTag(tag, name.WeakValidation); err != nil || strings.Contains(tag, "..") || strings.LastIndex(tag, ":") <= slash ||
		strings.ContainsAny(tag, "@") {
		return apperr.E(apperr.Invalid, "build-image: tag %q is not an image name with a tag (NAME:TAG)", tag)
	}
	return nil
}

// dirName is the workspace directory name of a tag: '/' and ':' become
// '_'. checkTag'd tags have no other special characters.
func dirName(tag string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(tag)
}

// registryOf returns the registry host an image reference names
// explicitly (the first path element with a dot or a port, or
// localhost); references without one are refused rather than sent to
// Docker Hub.
func registryOf(ref string) (string, error) {
	if ref == "" || len(ref) > maxRef {
		return "", apperr.E(apperr.Invalid, "image reference %q: give HOST/REPOSITORY:TAG", ref)
	}
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || rest == "" || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return "", apperr.E(apperr.Invalid, "image reference %q must name its registry: HOST/REPOSITORY:TAG", ref)
	}
	return host, nil
}

// realDir returns the directory rel (slash-separated) of the workspace,
// every element of which must be a real directory, not a symbolic link:
// the steps write there as the server, and a job's commands must not be
// able to send those writes elsewhere. With create, missing elements are
// made.
func realDir(workspace, rel string, create bool) (string, error) {
	p := workspace
	for _, el := range strings.Split(rel, "/") {
		p = filepath.Join(p, el)
		fi, err := os.Lstat(p)
		switch {
		case os.IsNotExist(err) && create:
			if err := os.Mkdir(p, 0o755); err != nil {
				return "", apperr.Wrap(err, apperr.Internal, "create "+rel)
			}
			continue
		case os.IsNotExist(err):
			return "", apperr.E(apperr.Invalid, "%s is missing from the workspace", rel)
		case err != nil:
			return "", apperr.Wrap(err, apperr.Internal, "inspect "+rel)
		case fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir():
			return "", apperr.E(apperr.Invalid, "%s in the workspace is not a directory (a job step replaced it)", rel)
		}
	}
	return p, nil
}
