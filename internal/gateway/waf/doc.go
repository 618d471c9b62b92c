// Package waf runs the OWASP Core Rule Set (github.com/corazawaf/coraza-coreruleset,
// CRS 4.25) on Coraza (github.com/corazawaf/coraza/v3) for the gateway.
//
// An Engine compiles one rule set per distinct Settings (mode, paranoia
// level, anomaly thresholds, rule exclusions, response inspection) on
// first use and shares it between the routes that use the same settings;
// Forget drops rule sets no route needs any more. The configuration is
// Coraza's recommended base, then Rampart's settings (rule engine On or
// DetectionOnly, anomaly thresholds and paranoia level as the CRS setup
// variables, ModSecurity's default of logging matches in every phase),
// then the CRS setup and rules, then the route's SecRuleRemoveById
// exclusions.
//
// WAF.Serve runs one request through a Coraza transaction around the
// proxy: connection, request line and headers, the request body
// (buffered up to the engine's limit and handed on to the backend), the
// response headers and, when the route inspects responses, the response
// body (held until it is complete or over the inspection limit). The
// logging phase runs before Serve returns, so every match line of a
// request is written before its response is complete. Each logged match
// is one ModSecurity-style line ("[id "942100"] … [unique_id "REQID"]")
// on the match log; the Outcome says whether the request was blocked and
// by which rule.
package waf
