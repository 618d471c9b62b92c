package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/rampartsec/rampart/internal/apperr"
)

// The admission gate's result cache. A cluster asks about the same
// object again and again: every kubectl apply of an unchanged Deployment,
// every controller's resync, the API server's retries. Those reviews
// differ only in fields that identify the request or the stored version
// (admissionVolatile), and Rampart removes those fields from the policy
// input before evaluation, so two reviews that differ only there are,
// for every policy, the same input: the engine evaluates it once and
// keeps what each policy said, keyed by the digest of the input as the
// policies see it. The cache belongs to the engine (one bundle revision),
// so a reload starts afresh; exceptions and modes are applied to the
// cached results on every decision, so an exception added or expired
// takes effect at once. A result with an evaluation error (a timeout) is
// never kept.

// admissionVolatile are the fields of an AdmissionReview that policies do
// not see: the request's uid (new for every review) and the parts of the
// object's metadata the API server sets for each stored version (uid,
// resourceVersion, managedFields, creationTimestamp), of object and
// oldObject; stripVolatile also hides generated names. Everything else —
// names given by the user, generateName, namespaces, labels, owner
// references, specs, the user asking — stays in the input and in the
// cache key.
var admissionVolatile = [][]string{
	{"request", "uid"},
	{"request", "object", "metadata", "uid"},
	{"request", "object", "metadata", "resourceVersion"},
	{"request", "object", "metadata", "managedFields"},
	{"request", "object", "metadata", "creationTimestamp"},
	{"request", "oldObject", "metadata", "uid"},
	{"request", "oldObject", "metadata", "resourceVersion"},
	{"request", "oldObject", "metadata", "managedFields"},
	{"request", "oldObject", "metadata", "creationTimestamp"},
}

// document is an input document, decoded and checked.
type document struct {
	// v is the input the policies see.
	v map[string]any
	// digest is the SHA-256 of the whole input's canonical JSON (what the
	// decision log records).
	digest string
	// key is the digest of v, for the result cache ("" when the gate's
	// results are not cached).
	key string
	// value is v as Rego input, made when first needed.
	value ast.Value
}

// regoValue returns the input as Rego input.
func (d *document) regoValue() (ast.Value, error) {
	if d.value == nil {
		v, err := ast.InterfaceToValue(d.v)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "the input document cannot become Rego input")
		}
		d.value = v
	}
	return d.value, nil
}

// checkInput checks a decoded input against its gate's schema, digests
// it and, for the admission gate, removes the volatile fields (from v
// itself) and makes the cache key.
func checkInput(gate Gate, v map[string]any) (document, error) {
	if err := validateInput(gate, v); err != nil {
		return document{}, err
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return document{}, apperr.Wrap(err, apperr.Invalid, "the input document does not encode as JSON")
	}
	doc := document{v: v, digest: sha256Hex(canon)}
	if gate != GateAdmission {
		_, err := doc.regoValue()
		return doc, err
	}
	stripVolatile(v)
	seen, err := json.Marshal(doc.v)
	if err != nil {
		return document{}, apperr.Wrap(err, apperr.Invalid, "the input document does not encode as JSON")
	}
	doc.key = string(gate) + ":" + sha256Hex(seen)
	return doc, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// stripVolatile removes the admissionVolatile fields from review, in
// place, and the names the API server generated: an object whose name is
// its generateName and a suffix (a ReplicaSet's pods, a Job's) is shown
// to the policies by its generateName alone — the suffix is random, and
// the replicas of one ReplicaSet are then the same input.
func stripVolatile(review map[string]any) {
	for _, path := range admissionVolatile {
		m := review
		for _, k := range path[:len(path)-1] {
			m, _ = m[k].(map[string]any)
		}
		if m != nil {
			delete(m, path[len(path)-1])
		}
	}
	req, _ := review["request"].(map[string]any)
	for _, o := range []string{"object", "oldObject"} {
		obj, _ := req[o].(map[string]any)
		meta, _ := obj["metadata"].(map[string]any)
		gen, _ := meta["generateName"].(string)
		name, _ := meta["name"].(string)
		if !generatedName(name, gen) {
			continue
		}
		delete(meta, "name")
		if n, _ := req["name"].(string); n == name {
			delete(req, "name")
		}
	}
}

// generatedName reports whether name has the shape the API server gives a
// generateName: the prefix and five characters of its random alphabet
// (consonants and digits that cannot spell words). Only such names are
// hidden from the policies; a name the user chose next to a generateName
// (name "kube-proxy-evil", generateName "kube-") stays, so policies on
// names cannot be bypassed by adding a generateName. A user may still
// pick a name of exactly the generated shape; policies then see the
// generateName, which has the same prefix.
func generatedName(name, gen string) bool {
	suffix, ok := strings.CutPrefix(name, gen)
	if gen == "" || !ok || len(suffix) != 5 {
		return false
	}
	for _, c := range []byte(suffix) {
		if !strings.ContainsRune(generatedAlphabet, rune(c)) {
			return false
		}
	}
	return true
}

// generatedAlphabet is what k8s.io/apimachinery's utilrand.String draws
// from for generated names.
const generatedAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// resultCacheSize bounds each generation of the result cache.
const resultCacheSize = 4096

// resultCache keeps what each policy of a gate said about an input, in
// two generations: when the current one is full it becomes the previous
// one and the oldest is dropped; a hit in the previous generation moves
// the entry forward. At most 2×resultCacheSize entries are held.
type resultCache struct {
	mu        sync.Mutex
	cur, prev map[string][]rawResult
}

func newResultCache() *resultCache {
	return &resultCache{cur: map[string][]rawResult{}}
}

func (c *resultCache) get(key string) ([]rawResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cur[key]; ok {
		return r, true
	}
	r, ok := c.prev[key]
	if ok {
		c.putLocked(key, r)
	}
	return r, ok
}

func (c *resultCache) put(key string, r []rawResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, r)
}

func (c *resultCache) putLocked(key string, r []rawResult) {
	if len(c.cur) >= resultCacheSize {
		c.prev, c.cur = c.cur, make(map[string][]rawResult, resultCacheSize)
	}
	c.cur[key] = r
}

// len counts the entries held.
func (c *resultCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
