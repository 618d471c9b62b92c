package gateway

import "net/http"

// UserHeader carries the signed-in end user to backends, as a JWT signed
// by the realm (verifiable with the realm's JWKS). The gateway removes it
// from every incoming request, so only the realm can set it.
const UserHeader = "X-Rampart-User"

// AuthPrefix is the path prefix the Authenticator owns on every host with
// a route whose auth is "required": its sign-in pages, sign-out and JWKS
// live there, whatever path the route itself has.
const AuthPrefix = "/.rampart/auth/"

// User is an end user signed in by an Authenticator.
type User struct {
	// Subject identifies the user in the realm (rate limits key on it).
	Subject string
	// Name is shown in access logs.
	Name string
	// Token is the signed JWT forwarded to the backend in UserHeader.
	Token string
}

// RouteInfo is what an Authenticator learns about the route a request is
// for.
type RouteInfo struct {
	ID        int64
	Name      string
	OrgID     int64
	ProjectID int64
	Host      string
	Path      string
	// AuthProvider is the route's auth_provider: the external OpenID
	// provider of the realm to sign in with ("" for the realm's users).
	AuthProvider string
}

// Authenticator signs end users in on routes whose auth setting is
// "required" (an end-user realm of the identity component, or an external
// OpenID provider). The gateway calls it after the per-address rate limit
// and before the WAF.
type Authenticator interface {
	// Authenticate returns the signed-in user of r. When handled is true
	// the authenticator has answered the request itself (a redirect to
	// its sign-in page, a sign-in callback, an error) and the gateway
	// stops there.
	Authenticate(w http.ResponseWriter, r *http.Request, route RouteInfo) (user User, handled bool)
}
