// Package federation lets an org's members sign in to Rampart with an
// upstream OpenID Connect provider (Azure AD, Keycloak, Google, another
// Rampart, …): Rampart is the relying party, through
// github.com/coreos/go-oidc and golang.org/x/oauth2.
//
// # Providers
//
// Org owners add providers (API, UI, `rampart org idp`). Each has a name
// unique in its org, a label for the sign-in button, the upstream issuer
// URL (https, or http only on a loopback host), the client id and secret
// Rampart was registered with upstream, the scopes to ask for, the claim
// new users take their user name from, whether to link org members by
// verified e-mail, whether to create users, and the role people joining
// the org through it get (reader by default; never owner). The client
// secret is sealed with identity's Sealer and never leaves the store but
// to authenticate Rampart at the upstream token endpoint: the API, CLI,
// UI, audit log and logs show only whether there is one. Everyone must
// register the same redirect URI upstream: the public URL +
// /login/idp/callback.
//
// # Sign-in
//
// The sign-in page offers a button per provider. Start fetches the
// issuer's discovery document (cached for an hour; an unreachable or
// misnamed issuer is a clear error), stores the sign-in's state, nonce and
// PKCE verifier server-side for ten minutes, and sends the browser to the
// upstream with the state, the nonce and an S256 code challenge. An
// HttpOnly cookie holds a second random value binding the state to the
// browser, so a callback URL copied to another browser is worthless.
// Finish deletes the state on first use (a replayed or tampered state
// fails), exchanges the code with the verifier, and verifies the ID
// token's signature, issuer, audience, expiry and nonce (and at_hash).
//
// The verified identity (issuer + subject) maps onto a user:
//
//  1. the user already linked to it;
//  2. else, when the provider links by e-mail and the upstream says the
//     address is verified, the user with that verified address — only if
//     they are already a member of the provider's org and not a site
//     administrator, since an org owner controls what the upstream
//     asserts and must not gain accounts beyond the org's through it;
//     any other existing account with that address is refused rather
//     than duplicated;
//  3. else, when the provider creates users, a new user named after the
//     provider's user name claim (made valid and unique), with the
//     upstream's e-mail address (verified only if the upstream says so);
//  4. else the sign-in is refused with a message saying why.
//
// Disabled users and service accounts never sign in this way. A user who
// is not yet a member of the org becomes one with the provider's role.
//
// An upstream amr claim containing otp, hwk or mfa counts as a second
// factor: the session's methods are fed and mfa, and nothing more is
// asked. Otherwise (amr fed) the sign-in continues like a password
// sign-in: the user's own Rampart second factor, or the enrolment an org's
// MFA requirement asks for, completes a pending session.
//
// Provider changes (idp.create, idp.delete), sign-ins and refused
// sign-ins (user.login with via idp:NAME), users created on first sign-in
// (user.create) and new links (federation.link) are written to the audit
// log.
package federation
