// Package gateway is Rampart's layer-7 gateway (the Application Gateway of
// the reference architecture): its own listener in front of the
// applications, routing by host and path to pools of backends, with TLS,
// a WAF (Coraza and the OWASP Core Rule Set, package waf), limits and
// telemetry.
//
// # Routes
//
// A Route is a Spec (host, path prefix, backends, balance policy, WAF
// settings, auth, timeout, retries, body limit, health check, rate
// limits) with a name and an owner: a project (managed by its org's
// owners) or the site (site administrators, and the config file). Routes
// come from three places: the API (PUT/DELETE under /api/v1/gateway/routes
// and /api/v1/orgs/{org}/projects/{project}/gateway/routes, also used by
// `rampart gateway route`), the config file (`rampart up --gateway-config`,
// site routes and certificates, re-read when it changes), and later
// releases of the deploy component through the same Service. Every change
// is audited (gateway.route.create/update/delete, gateway.route.waf for a
// WAF mode or paranoia change, gateway.config.reload).
//
// Matching: the most specific host entry wins — the exact name, else a
// one-label wildcard (*.example.com), else the routes for any host — and
// a host claimed by a route never falls through to a less specific one.
// Within the host, the longest path prefix on a segment boundary wins. A
// host belongs to one owner: a project cannot add paths under another
// project's host, and only the site may claim the catch-all.
//
// # Lifecycle
//
// Service.Start loads the config file and the stored routes into the
// Gateway; Gateway.Load compiles what the new table needs (WAF rule
// sets, backend pools) and swaps it in atomically, so requests in flight
// finish on the table they started with and a table that does not load
// changes nothing. A route change through the API is first loaded inside
// its transaction (a route the gateway cannot serve is refused), then
// committed; other replicas notice the generation counter move within
// the poll interval and reload. Backends keep their health across
// reloads.
//
// # Requests
//
// The handler chain, in order: recover → request id (X-Request-Id on
// every answer) → framing checks (Content-Length with Transfer-Encoding
// is refused as request smuggling; CONNECT, fragments and bad hosts are
// refused) → route (a path under AuthPrefix goes to the host's first
// route with auth "required", so the Authenticator's pages answer on
// every path of such a host) → per-address rate limit → sign-in (routes
// with auth "required" ask the Authenticator — the org's end-user realm,
// package identity/realm, or the external provider the route's
// auth_provider names; none configured answers 503) →
// per-user rate limit → body limit → WAF → proxy; the access log line and
// metrics are written last. Forwarding picks a backend (smooth weighted
// round robin or least connections, skipping backends that fail active
// health checks or were ejected after consecutive failures), retries
// idempotent requests without a body on other backends when one cannot
// be reached, bounds the wait for response headers, keeps connections to
// backends alive and copies bodies with pooled buffers. It takes one of
// two paths. The direct path (direct.go) serves GET and HEAD requests
// without a body on routes whose backends are all plain HTTP — most
// traffic: the serving goroutine writes the request head to a pooled
// keep-alive connection of the backend and relays the response, with no
// request clone, no context values and no transport goroutines; a
// non-WAF route without sign-in takes it straight from the handler.
// Everything else (bodies, upgrades, https and HTTP/2 backends) goes
// through Go's httputil.ReverseProxy with Rampart's transport. Both drop
// hop-by-hop headers and those Connection names, set X-Forwarded-For,
// -Host and -Proto, X-Request-Id and the user header themselves, append
// the gateway's Via entry, and add the same security headers to
// responses (a test checks they forward alike). A request whose Via shows
// it passed through this gateway before is answered 508 (egress.go), and
// every backend dial is checked, after name resolution, against the
// deny list of Options.BackendDeny (cloud-metadata and link-local
// networks by default). Failures answer 502, 503 or 504 as
// problem details carrying the request id.
//
// Requests the WAF blocks (or, in detect mode, would have blocked), and
// requests on WAF routes whose client stopped sending the body, become
// security Events, written in batches by one goroutine to an
// EventRecorder (the gateway_events table now) and counted; the WAF's
// ModSecurity-style match lines go to the match log with the request id
// as transaction id.
//
// Access log lines go through the injected slog logger, or, with
// Options.AccessLogWriter (as `rampart up` runs it), are encoded by the
// gateway and written in batches every 250 ms or 64 KiB and when Run
// ends.
//
// # Certificates
//
// With TLS, a handshake gets the config file's certificate covering its
// server name, else, with Options.ACME, the ACME certificate of a host an
// exact route claims (acme.go: autocert, the TLS-ALPN-01 challenge on the
// gateway's own listener, the local CA's certificate while the ACME CA
// fails), else a certificate the local CA issues for the claiming route
// host, else the default one (localhost): the gateway never gets or mints
// a certificate for a name no route claims. autocert's renewal timers do
// not ask which hosts are still routed: the ACME client's transport
// (orderGuard) refuses their orders for hosts no exact route claims.
package gateway
