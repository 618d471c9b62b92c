package registry

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"regexp"
	"strings"
)

// Limits on names and references (OCI distribution spec).
const (
	maxNameLen = 255
	maxTagLen  = 128
)

var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// validName reports whether name is a repository name the OCI spec allows,
// with at least two components (ORG/NAME): the first names the org.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if !componentRE.MatchString(p) {
			return false
		}
	}
	return true
}

func validTag(tag string) bool { return len(tag) <= maxTagLen && tagRE.MatchString(tag) }

// Digest is a content digest "algorithm:hex". Only sha256 and sha512 are
// accepted.
type Digest string

// Algorithms Rampart verifies.
const (
	SHA256 = "sha256"
	SHA512 = "sha512"
)

// ParseDigest validates a digest string.
func ParseDigest(s string) (Digest, bool) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	var n int
	switch alg {
	case SHA256:
		n = 64
	case SHA512:
		n = 128
	default:
		return "", false
	}
	if len(enc) != n {
		return "", false
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return Digest(s), true
}

// looksLikeDigest reports whether s has the shape algorithm:encoded (OCI
// grammar), valid or not, to tell digests from tags.
func looksLikeDigest(s string) bool { return strings.Contains(s, ":") }

// Algorithm returns the digest's algorithm.
func (d Digest) Algorithm() string { a, _, _ := strings.Cut(string(d), ":"); return a }

// Hex returns the encoded part.
func (d Digest) Hex() string { _, h, _ := strings.Cut(string(d), ":"); return h }

func (d Digest) String() string { return string(d) }

// newHash returns a hash for algorithm alg (sha256 or sha512).
func newHash(alg string) hash.Hash {
	if alg == SHA512 {
		return sha512.New()
	}
	return sha256.New()
}

// digestOf hashes b with alg.
func digestOf(alg string, b []byte) Digest {
	h := newHash(alg)
	h.Write(b)
	return Digest(alg + ":" + hex.EncodeToString(h.Sum(nil)))
}

// route is a parsed /v2/ request path.
type route struct {
	kind string // base, blob, upload, uploads, manifest, tags, referrers
	name string
	ref  string // digest, tag or upload id
}

// parsePath splits a /v2/ path into the repository name and the endpoint.
// Names contain slashes, so the endpoint is recognised from the end.
func parsePath(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: "base"}, true
		}
		return route{}, false
	}
	if rest == "" {
		return route{kind: "base"}, true
	}
	if len(rest) > 1024 {
		return route{}, false
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	name := func(k int) string { return strings.Join(segs[:k], "/") }
	switch {
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads" && segs[n-1] == "":
		return route{kind: "uploads", name: name(n - 3)}, true
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		return route{kind: "upload", name: name(n - 3), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return route{kind: "uploads", name: name(n - 2)}, true
	case n >= 3 && segs[n-2] == "blobs":
		return route{kind: "blob", name: name(n - 2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "manifests":
		return route{kind: "manifest", name: name(n - 2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return route{kind: "tags", name: name(n - 2)}, true
	case n >= 3 && segs[n-2] == "referrers":
		return route{kind: "referrers", name: name(n - 2), ref: segs[n-1]}, true
	}
	return route{}, false
}

// encodeHex is hex.EncodeToString, named for readability at call sites.
func encodeHex(b []byte) string { return hex.EncodeToString(b) }

func asErr[T error](err error, target *T) bool { return errorsAs(err, target) }

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }
