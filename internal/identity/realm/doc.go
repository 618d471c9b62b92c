// Package realm is the end-user realm of the identity component (Azure AD
// B2C in the reference architecture): the customers of an org's
// applications sign up and sign in here, with MFA, before the gateway
// lets their requests through. Realm users are not Rampart users: they
// have their own tables (realm_users, …), never get a role, a token or a
// Rampart session, and cannot sign in to Rampart itself.
//
// # Realms
//
// An org has at most one realm, created and changed by the org's owners
// (API PUT/GET/DELETE /api/v1/orgs/{org}/realm, `rampart realm`; audited
// realm.create, realm.update naming the fields that changed, and
// realm.delete). Its settings: the name shown on its pages, whether
// anyone may register, the SMTP server verification mails go through
// (host, port, from address, TLS mode starttls/tls/none, user name and
// password — the password sealed with identity's Sealer and never shown
// again), and the session idle timeout and lifetime (30m and 12h by
// default). Creating a realm makes its ES256 signing key (P-256, sealed
// at rest; key id "kid"); RotateKey replaces it, keeping the old public
// key in the JWKS until tokens signed with it have expired.
//
// Every gateway route of the org's projects whose auth is "required"
// uses the org's realm; a route of an org without one, and a site route,
// answers 503 (fail closed).
//
// # Sign-in, on the application's own host
//
// The gateway hands requests for such routes to Authenticator. Its pages
// live under gateway.AuthPrefix (/.rampart/auth/) on every host with a
// route that requires sign-in, whatever the route's own path:
//
//	register  e-mail + password (identity's policy; argon2id); a
//	          single-use link valid 24 h is mailed (only its SHA-256 is
//	          stored, with the hash of the password typed). Registering
//	          an unverified address again mails another link with its
//	          own password, leaving the account's as it is (at most once
//	          a minute); a verified one gets a notice: the page says the
//	          same in every case.
//	verify    GET shows the form, POST with the password chosen at the
//	          link's registration uses the token up and gives the
//	          account that password (mail scanners that fetch links do
//	          not consume it; a stranger's registration of the address
//	          cannot be confirmed with the owner's password).
//	signin    e-mail + password; unverified addresses are refused. A
//	          session starts at stage "enrol" (no authenticator app
//	          yet: MFA is required, so the user enrols one now) or
//	          "mfa".
//	mfa       enrol TOTP (QR code and key) or a security key (WebAuthn;
//	          relying party = the host), then ten recovery codes shown
//	          once; or enter a TOTP or recovery code, or use the key.
//	          The session then becomes "full" under a new secret.
//	forgot    mails a single-use password reset link (an hour) to a
//	          confirmed address; reset sets the new password and ends
//	          the account's sessions (the second factor stays).
//	signout   POST ends the session.
//	jwks.json the realm's public keys.
//
// Five wrong passwords or codes in a row lock the account for fifteen
// minutes (429 with Retry-After; audited realm.user.lock). An attempt is
// counted before it is checked (one UPDATE … RETURNING), so concurrent
// guesses get no more than sequential ones. The password asked for on a
// registration's verification link is limited the same way, per link
// (audited realm.user.verify failures and realm.user.verify.lock). Unknown
// addresses cost the same argon2 work as known ones.
//
// Sessions are one cookie per gateway host (host-only, HttpOnly,
// SameSite=Lax, Secure and __Host- prefixed over TLS), stored hashed
// with the host they belong to, and end after the realm's idle timeout
// or lifetime (a half-finished sign-in after ten minutes). Every form
// carries a CSRF token checked against a SameSite=Strict cookie. Pages
// are server-rendered with a strict Content-Security-Policy (scripts and
// styles only from the realm's own files, nothing inline), no-store and
// no-referrer.
//
// # What the application receives
//
// A request with a full session passes the gateway with the user as a
// JWT in gateway.UserHeader (X-Rampart-User), minted at most once a
// minute per session and host (the session is checked on every request):
// ES256 with the realm's kid, valid five minutes, with iss (the realm's
// issuer URL, PublicURL + /api/v1/realms/{org}), sub (the user's id in
// the realm), aud (the request's host), iat, nbf, exp, email,
// email_verified and amr (["pwd","otp"], plus "rec" after a recovery
// code; ["pwd","hwk"] after a security key). The key set is published
// at {iss}/jwks on Rampart's API and at /.rampart/auth/jwks.json on the
// application's host. The gateway removes
// any X-Rampart-User header a client sends, and its per-user rate limit
// keys on the realm user.
//
// Browsers without a session are redirected to the sign-in page (GET and
// HEAD asking for HTML); other clients get 401 problem details.
//
// # External providers
//
// A route whose auth_provider names one of the realm's external OpenID
// providers (Provider; API .../realm/providers/{name}, audited
// realm.provider.set and realm.provider.delete) signs visitors in there
// instead: oidc/start keeps state, nonce and PKCE verifier server-side
// (bound to the browser by a cookie and to the host), oidc/callback uses
// the state up once, exchanges the code and verifies the ID token with
// go-oidc. Unless the provider's RequireMFA is off, the ID token's amr
// must name a second factor. The complete session carries the provider's
// subject, e-mail and amr; the JWT's sub is PROVIDER:SUBJECT and its idp
// the provider's name. A session opens only routes of its own kind: a
// provider's sessions the routes naming it, realm users' the routes
// naming none.
package realm
