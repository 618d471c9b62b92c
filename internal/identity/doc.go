// Package identity knows who is who: users (people and org-owned service
// accounts), orgs, teams and projects with their memberships, and every way
// to prove an identity — passwords (argon2id), second factors (TOTP,
// WebAuthn security keys and passkeys, one-time recovery codes), browser
// sessions, personal access and service-account tokens.
//
// # Sign-in
//
// A browser sign-in is a small state machine kept in a session row: the
// password step creates a pending session; if the user has a second factor
// (or an org of theirs requires one) the session stays pending until TOTP,
// a security key or a recovery code completes it; only an active session
// authenticates requests. Every attempt passes the login throttle first: per
// user name and per client address, repeated failures lock further attempts
// for an exponentially growing time.
//
// Sessions end after an idle timeout and an absolute timeout, whichever comes
// first. Each session has its own CSRF token.
//
// # Tokens
//
// Tokens are shown once at creation and stored only as SHA-256 hashes. Each
// carries scopes (see authz.Scopes) and an optional expiry. Their text starts
// with "rpt_" and ends with a checksum, so secret scanners can recognise them
// and reject typos without a database lookup.
//
// TokenSubject (what authn uses) caches a verified token for TokenCacheTTL
// (two seconds, never past the token's expiry), keyed by the token's
// SHA-256, with its user, token and subject (roles, grants, MFA status);
// never the token itself. Every transaction that changes users, tokens,
// orgs, projects, teams, memberships, grants or second factors goes
// through writeTx, which moves the service's Generation on and empties the
// cache when it ends, so in this process a revocation, a disabled user or a
// role change applies to the very next request. Other replicas on the same
// PostgreSQL database keep their own cache: there a change takes effect
// within TokenCacheTTL. Components that cache what they derive from
// identity (the vault's resolved scopes) compare Generation the same way.
//
// # Authorisation
//
// identity loads what a user holds (org roles, project grants, MFA status)
// into an authz.Subject; the decision itself is authz.Decide's.
//
// Every change and every sign-in attempt is written to the audit log, inside
// the same transaction as the change.
package identity
