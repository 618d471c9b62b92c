// Package oidcop is Rampart's OpenID provider: OpenID Connect and OAuth 2
// for relying parties (web apps that sign users in with Rampart), for the
// rampart command line, and for API clients. The protocol is
// github.com/zitadel/oidc/v3's op package; this package is its storage in
// Rampart's store, the browser steps in the web UI, client registration,
// and signing keys.
//
// # Endpoints
//
// The issuer is Rampart's public URL. Discovery is at
// /.well-known/openid-configuration; the protocol endpoints live under
// /oauth/ (authorize, token, userinfo, keys, revoke, introspect,
// end_session, device_authorization). They authenticate their callers
// themselves (client secrets, access tokens), so the app routes them past
// Rampart's request authentication (SkipAuthn).
//
// # Clients
//
// Site administrators register clients (API, UI, `rampart oidc client`).
// Confidential clients get a secret, shown once and stored as a SHA-256
// hash; public clients have none and must use PKCE (S256). Redirect URIs
// are https, or http only on localhost and loopback addresses, never with
// a fragment. Each client lists the Rampart API scopes (authz.Scopes) it
// may obtain on top of openid, profile, email and offline_access. The
// built-in public client rampart-cli (device code and refresh token
// grants, scope admin) is created at first start.
//
// # Authorization code flow
//
// /oauth/authorize stores the request and sends the browser to the sign-in
// page /login/oidc?authRequest=ID. With an active browser session the page
// completes the request and redirects to the client with a code; without
// one (or when the client sent prompt=login or a max_age the session's
// sign-in is older than) it goes through /login first and comes back.
// prompt=none answers login_required instead. There is no consent screen:
// every client is registered by a site administrator and its API scopes
// are capped at registration. The session's authentication methods (amr:
// pwd, otp, hwk, and mfa for two factors) and sign-in time (auth_time) go
// into the ID token, so relying parties can demand a second factor.
//
// A code is the authorization request's id sealed with identity's Sealer;
// the store keeps only its hash. It expires after two minutes and works
// once: the first exchange burns it, even if that exchange fails.
//
// # Tokens
//
// Access tokens are opaque ("rpo_" + a sealed "tokenID:subject"); the store
// keeps a hash of the token id, so a copy of the database yields no usable
// token. They are revocable and expire after an hour by default. Rampart's
// API accepts them (VerifyAccessToken, used by authn) with the API scopes
// granted. Refresh tokens (offline_access) are random, stored hashed and
// rotated on every use; presenting a used one again revokes every token of
// its grant, since it must have leaked. Client-credentials tokens act for
// no user: they serve introspection, not Rampart's API.
//
// # Device flow
//
// A device asks /oauth/device_authorization for a device code and a user
// code; the user opens /device in a signed-in browser, types the code,
// sees the client and the scopes, and approves or denies. The device polls
// the token endpoint; polling faster than the interval is answered with
// slow_down. An approved or denied code is answered once, then deleted.
//
// # Signing keys
//
// ID tokens are signed with RS256 keys whose private half is sealed with
// identity's Sealer. The newest key signs; when it is older than the
// rotation period (30 days by default), the next signing replaces it, and
// site administrators can rotate at once (API, UI, `rampart oidc keys
// rotate`). A replaced key stays in the key set until every ID token it
// signed has expired, then Purge deletes it along with expired requests
// and tokens.
//
// Client registration, deletion, key rotation, authorizations, device
// decisions, revocations and refused steps (wrong client secrets, reused
// refresh tokens) are written to the audit log.
package oidcop
