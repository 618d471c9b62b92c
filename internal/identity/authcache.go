package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/store"
)

// Token cache limits. A verified token is remembered for TokenCacheTTL at
// most (never past its expiry) so a client sending many requests costs one
// round of token, user, role and MFA queries per TTL instead of one per
// request. In this process every change that could alter the answer —
// a token revoked, a user disabled, a role, membership, grant, team or
// second factor changed — empties the cache when its transaction commits.
// Another replica sharing the PostgreSQL database sees such a change
// within TokenCacheTTL.
const (
	TokenCacheTTL   = 2 * time.Second
	maxCachedTokens = 4096
)

// tokenKey is the SHA-256 of a token: the cache never holds a token.
type tokenKey [sha256.Size]byte

// verifiedToken is what a token resolved to at one identity generation.
type verifiedToken struct {
	gen   uint64
	until time.Time // expiry of the entry: load time + TTL, or the token's expiry if sooner
	user  User
	token Token
	sub   authz.Subject // Via left empty: set per call
}

// authCache remembers verified tokens. Its generation counts identity
// changes; an entry loaded at an older generation is never used, which
// also covers a load racing with a change: the load reads the generation
// before its queries, so a change that commits meanwhile makes it stale.
type authCache struct {
	gen     atomic.Uint64
	ttl     time.Duration // 0 turns the cache off
	mu      sync.RWMutex
	entries map[tokenKey]*verifiedToken
}

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{ttl: ttl, entries: map[tokenKey]*verifiedToken{}}
}

// invalidate forgets every verified token and makes entries being loaded
// stale.
func (c *authCache) invalidate() {
	c.gen.Add(1)
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

func (c *authCache) get(k tokenKey, now time.Time) (*verifiedToken, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || e.gen != c.gen.Load() || !now.Before(e.until) {
		return nil, false
	}
	return e, true
}

func (c *authCache) put(k tokenKey, e *verifiedToken, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gen != c.gen.Load() {
		return // identity changed while this entry was loaded
	}
	if len(c.entries) >= maxCachedTokens {
		for key, old := range c.entries {
			if old.gen != e.gen || !now.Before(old.until) {
				delete(c.entries, key)
			}
		}
		// Still full of live entries: drop half of them (map order is
		// random enough for a bound).
		for key := range c.entries {
			if len(c.entries) < maxCachedTokens/2 {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = e
}

// Generation counts the changes to users, tokens, orgs, projects, teams,
// memberships, grants and second factors made through this service (in
// this process). A cache of anything derived from them stays valid while
// the generation is unchanged.
func (s *Service) Generation() uint64 { return s.auth.gen.Load() }

// writeTx runs fn in a transaction that changes identity, and forgets
// cached verifications once it is over (committed or not).
func (s *Service) writeTx(ctx context.Context, fn func(tx *store.Tx) error) error {
	defer s.auth.invalidate()
	return s.db.Tx(ctx, fn)
}

// TokenSubject authenticates a Rampart token as AuthenticateToken does and
// returns, with its user and token, the authz subject it acts as (Subject
// with the token's scopes; via names the credential). Results are cached
// for TokenCacheTTL under the token's SHA-256; each caller gets its own
// copy of the subject's maps.
func (s *Service) TokenSubject(ctx context.Context, raw, via string) (User, Token, authz.Subject, error) {
	if !wellFormedToken(raw) {
		return User{}, Token{}, authz.Subject{}, errBadToken
	}
	k := tokenKey(sha256.Sum256([]byte(raw)))
	now := s.now()
	if e, ok := s.auth.get(k, now); ok {
		sub := e.sub
		sub.Via = via
		// Copies: a caller changing its subject must not change the
		// next caller's.
		sub.OrgRoles = maps.Clone(e.sub.OrgRoles)
		sub.ProjectRoles = maps.Clone(e.sub.ProjectRoles)
		sub.Scopes = slices.Clone(e.sub.Scopes)
		tok := e.token
		tok.Scopes = slices.Clone(e.token.Scopes)
		return e.user, tok, sub, nil
	}
	gen := s.auth.gen.Load()
	u, t, err := s.authenticateHash(ctx, hex.EncodeToString(k[:]), now)
	if err != nil {
		return User{}, Token{}, authz.Subject{}, err
	}
	sub, err := s.Subject(ctx, u, t.Scopes, via)
	if err != nil {
		return User{}, Token{}, authz.Subject{}, err
	}
	until := now.Add(s.auth.ttl)
	if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(until) {
		until = t.ExpiresAt
	}
	cached := sub
	cached.Via = ""
	cached.OrgRoles = maps.Clone(sub.OrgRoles)
	cached.ProjectRoles = maps.Clone(sub.ProjectRoles)
	s.auth.put(k, &verifiedToken{gen: gen, until: until, user: u, token: t, sub: cached}, now)
	return u, t, sub, nil
}

// authenticateHash is AuthenticateToken for a well-formed token given by
// the hex SHA-256 the database keeps.
func (s *Service) authenticateHash(ctx context.Context, hash string, now time.Time) (User, Token, error) {
	t, err := scanToken(s.db.QueryRow(ctx, selectToken+" WHERE hash = ?", hash))
	if apperr.Is(err, apperr.NotFound) {
		return User{}, Token{}, errBadToken
	}
	if err != nil {
		return User{}, Token{}, err
	}
	if !t.Active(now) {
		return User{}, Token{}, errBadToken
	}
	u, err := s.User(ctx, t.UserID)
	if err != nil {
		return User{}, Token{}, err
	}
	if u.Disabled {
		return User{}, Token{}, errBadToken
	}
	if now.Sub(t.LastUsedAt) > time.Minute {
		if _, err := s.db.Exec(ctx, "UPDATE tokens SET last_used_at = ? WHERE id = ?", store.Time(now), t.ID); err != nil {
			return User{}, Token{}, err
		}
		t.LastUsedAt = now
	}
	return u, t, nil
}
