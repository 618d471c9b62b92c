package vault

import (
	"sync"
	"sync/atomic"
	"time"
)

// readCache keeps the rows secret reads load — a secret, one of its
// versions, the org's policy generation and the path's KV metadata — so a
// read of a hot secret costs no query. It holds what the database holds:
// ciphertexts and wrapped data keys, never a value or an unwrapped key.
//
// Freshness. Every commit of the vault's writes in this process (secrets,
// versions, metadata, policies, leaks, key rotations) moves the cache's
// generation after it commits; an entry is used only in the generation it
// was loaded in, and a read notes the generation before its query, so a
// row read before a commit is never served after it. Writes of other
// replicas sharing the database are seen within readCacheTTL, the bound
// identity already gives tokens and scopes (an org or project deleted
// elsewhere is refused by the scope lookup first).
type readCache struct {
	gen atomic.Uint64

	mu    sync.RWMutex
	m     map[readKey]readEntry
	bytes int // of the ciphertexts and wrapped keys held
}

type readKey struct {
	scopeKey string
	version  int
}

type readEntry struct {
	sec    Secret
	v      Version
	sl     sealed
	polGen int64
	gen    uint64
	at     time.Time
}

// Bounds: entries younger than readCacheTTL, at most readCacheMax of them
// holding at most readCacheBytes of ciphertexts, wrapped keys and scope
// keys (values are at most MaxValue, 64 KiB, each; the rest of an entry is
// a few hundred bytes); when either is reached the cache starts again
// empty.
const (
	readCacheTTL   = time.Second
	readCacheMax   = 8192
	readCacheBytes = 16 << 20
)

func newReadCache() *readCache { return &readCache{m: map[readKey]readEntry{}} }

// get returns the entry for k if it is of the current generation and
// younger than the TTL.
func (c *readCache) get(k readKey) (readEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || e.gen != c.gen.Load() || time.Since(e.at) > readCacheTTL {
		return readEntry{}, false
	}
	return e, true
}

// put stores e, loaded in generation e.gen (noted before the query).
func (c *readCache) put(k readKey, e readEntry) {
	if e.gen != c.gen.Load() {
		return // a write committed meanwhile
	}
	size := len(e.sl.ciphertext) + len(e.sl.wrapped) + len(k.scopeKey)
	c.mu.Lock()
	if e.gen != c.gen.Load() { // invalidate ran meanwhile: nothing of before stays
		c.mu.Unlock()
		return
	}
	if len(c.m) >= readCacheMax || c.bytes+size > readCacheBytes {
		clear(c.m)
		c.bytes = 0
	}
	if old, ok := c.m[k]; ok {
		c.bytes -= len(old.sl.ciphertext) + len(old.sl.wrapped) + len(k.scopeKey)
	}
	c.m[k] = e
	c.bytes += size
	c.mu.Unlock()
}

// generation is the cache's generation: a read notes it before its query.
func (c *readCache) generation() uint64 { return c.gen.Load() }

// invalidate is called after every commit of a write: entries loaded
// before it are not used again.
// The entries go too: a destroyed version's ciphertext and wrapped key
// must not stay in memory.
func (c *readCache) invalidate() {
	c.mu.Lock()
	c.gen.Add(1)
	clear(c.m)
	c.bytes = 0
	c.mu.Unlock()
}
