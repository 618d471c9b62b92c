package registry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// Registry actions, as in Docker token scopes.
const (
	actPull   = "pull"
	actPush   = "push"
	actDelete = "delete"
)

// actionOf maps a registry action onto authz: pull needs reader, push
// developer, deleting manifests, tags and blobs maintainer.
func actionOf(a string) authz.Action {
	switch a {
	case actPush:
		return authz.RegistryPush
	case actDelete:
		return authz.RegistryDelete
	}
	return authz.RegistryPull
}

// Access is one grant of a registry token: actions on a repository.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims is the payload of a registry token.
type claims struct {
	Issuer    string        `json:"iss"`
	Subject   string        `json:"sub"`
	Name      string        `json:"name,omitempty"`
	Audience  string        `json:"aud"`
	ExpiresAt int64         `json:"exp"`
	IssuedAt  int64         `json:"iat"`
	ID        string        `json:"jti"`
	Access    []Access      `json:"access"`
	Scopes    []authz.Scope `json:"scopes,omitempty"`
	// Job marks a token minted for a pipeline job: it is limited to its
	// access list even for cross-repository mounts.
	Job bool `json:"job,omitempty"`
}

// names reports whether the token holds an entry for repository name.
func (c *claims) names(name string) bool {
	return slices.ContainsFunc(c.Access, func(a Access) bool { return a.Type == "repository" && a.Name == name })
}

func (c *claims) allows(name, action string) bool {
	for _, a := range c.Access {
		if a.Type == "repository" && a.Name == name && (slices.Contains(a.Actions, action) || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

const tokenHeader = `{"alg":"HS256","typ":"JWT"}`

var b64 = base64.RawURLEncoding

// sign returns a compact JWS (HS256) of c. The registry is the only one to
// verify its tokens, so a shared secret is enough and keeps tokens small.
func (s *Service) sign(c *claims) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	msg := b64.EncodeToString([]byte(tokenHeader)) + "." + b64.EncodeToString(body)
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(msg))
	return msg + "." + b64.EncodeToString(m.Sum(nil)), nil
}

// maxTokenLen bounds what verify parses.
const maxTokenLen = 16 << 10

// parseToken checks a registry token's signature, audience and expiry.
// Anything wrong yields ok == false; it never panics on any input.
func parseToken(key []byte, service string, now time.Time, raw string) (*claims, bool) {
	if len(raw) > maxTokenLen || strings.Count(raw, ".") != 2 {
		return nil, false
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, sig, _ := strings.Cut(rest, ".")
	hb, err := b64.DecodeString(h)
	if err != nil || string(hb) != tokenHeader {
		return nil, false
	}
	sb, err := b64.DecodeString(sig)
	if err != nil {
		return nil, false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h + "." + p))
	if !hmac.Equal(sb, m.Sum(nil)) {
		return nil, false
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, false
	}
	var c claims
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, false
	}
	if c.Audience != service || c.Issuer != "rampart" || now.Unix() >= c.ExpiresAt {
		return nil, false
	}
	return &c, true
}

// caller is who sent a registry request.
type caller struct {
	// p is set for Rampart credentials (tokens, sessions) and anonymous
	// requests; tok for registry tokens.
	p   *authn.Principal
	tok *claims
}

func (c caller) anonymous() bool { return c.tok == nil && !c.p.Subject.Authenticated() }

func (c caller) userID() int64 {
	if c.tok != nil {
		id, _ := strconv.ParseInt(c.tok.Subject, 10, 64)
		return id
	}
	return c.p.User.ID
}

func (c caller) userName() string {
	if c.tok != nil {
		return c.tok.Name
	}
	return c.p.User.Username
}

// identify resolves the request's credential: a registry token, a Rampart
// credential, or none.
func (s *Service) identify(r *http.Request) (caller, error) {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		raw := strings.TrimSpace(h[7:])
		if !strings.HasPrefix(raw, identity.TokenPrefix) && strings.Count(raw, ".") == 2 {
			c, ok := parseToken(s.tokenKey, s.service, s.now(), raw)
			if !ok {
				return caller{}, &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
					Msg: "invalid or expired registry token; log in again", challenge: s.challenge(r.Host, "", nil)}
			}
			return caller{tok: c}, nil
		}
	}
	if user, pw, ok := r.BasicAuth(); ok && looksLikeRegistryToken(pw) {
		c, ok := parseToken(s.tokenKey, s.service, s.now(), pw)
		if !ok || (user != "" && user != c.Name) {
			return caller{}, &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
				Msg: "invalid or expired registry token; log in again", challenge: s.challenge(r.Host, "", nil)}
		}
		return caller{tok: c}, nil
	}
	p, err := s.authn.Authenticate(r)
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			return caller{}, &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
				Msg: apperr.Message(err), challenge: s.challenge(r.Host, "", nil)}
		}
		return caller{}, err
	}
	return caller{p: p}, nil
}

// challenge is the WWW-Authenticate header sending clients to the token
// endpoint. The realm is on the host the client already talks to (some
// clients, oras among them, refuse a realm on another loopback name).
func (s *Service) challenge(host string, name string, actions []string) string {
	base := s.publicURL
	if host != "" && validHost(host) {
		scheme, _, _ := strings.Cut(s.publicURL, "://")
		base = scheme + "://" + host
	}
	h := fmt.Sprintf(`Bearer realm="%s/v2/token",service="%s"`, base, s.service)
	if name != "" {
		h += fmt.Sprintf(`,scope="repository:%s:%s"`, name, strings.Join(actions, ","))
	}
	return h
}

// repoAccess decides whether c may do action on the repository: nil, or
// an OCI error (401 with a challenge when a better credential could help,
// DENIED when the caller is known and refused).
func (s *Service) repoAccess(ctx context.Context, c caller, t target, action string) error {
	host := hostOf(ctx)
	public := action == actPull && t.repo != nil && t.repo.Public && t.stale == ""
	switch {
	case public:
		return nil
	case c.anonymous():
		return &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Msg: "authentication required", challenge: s.challenge(host, t.name, []string{action})}
	case t.stale != "":
		return errDenied("%s", t.stale)
	}
	switch {
	case c.tok != nil:
		if c.tok.allows(t.name, action) {
			return nil
		}
		if c.tok.names(t.name) && c.tok.Subject != "" && !s.tokenSubjectMay(ctx, c, t, action) {
			// The token was issued for this repository, the action was not
			// granted and its subject may not do it: asking again would
			// not help. When the subject may (the token was asked for a
			// narrower scope, as clients do for a GET), the challenge below
			// lets the client fetch a wider token.
			return errDenied("%s may not %s %s", c.tok.Name, action, t.name)
		}
		return &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Msg: fmt.Sprintf("the registry token does not grant %s on %s", action, t.name), challenge: s.challenge(host, t.name, []string{action})}
	}
	d := authz.Decide(c.p.Subject, actionOf(action), t.res)
	if !d.Allow {
		return errDenied("%s on %s: %s", action, t.name, d.Reason)
	}
	return nil
}

// TokenResponse is what the token endpoint returns (Docker token spec).
type TokenResponse struct {
	Token       string    `json:"token"`
	AccessToken string    `json:"access_token"`
	ExpiresIn   int       `json:"expires_in"`
	IssuedAt    time.Time `json:"issued_at"`
}

// maxScopes bounds the scopes one token request may ask for.
const maxScopes = 16

// parseScope reads "repository:NAME:ACTIONS" (NAME may carry a registry
// host in other registries' scopes; here it never does).
func parseScope(sc string) (Access, bool) {
	typ, rest, ok := strings.Cut(sc, ":")
	if !ok || typ != "repository" {
		return Access{}, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return Access{}, false
	}
	name, acts := rest[:i], rest[i+1:]
	if !validName(name) {
		return Access{}, false
	}
	var out []string
	for a := range strings.SplitSeq(acts, ",") {
		switch a {
		case actPull, actPush, actDelete:
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		case "*":
			for _, x := range []string{actPull, actPush, actDelete} {
				if !slices.Contains(out, x) {
					out = append(out, x)
				}
			}
		}
	}
	return Access{Type: "repository", Name: name, Actions: out}, true
}

// serveToken is GET (and POST, OAuth2 password grant) /v2/token: it
// checks the Rampart credential and issues a short-lived registry token
// holding the requested actions the caller may do.
func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, r, s.log, oci(http.StatusMethodNotAllowed, codeUnsupported, "use GET or POST"))
		return
	}
	var scopes []string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeError(w, r, s.log, oci(http.StatusBadRequest, codeUnsupported, "malformed form"))
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			writeError(w, r, s.log, oci(http.StatusBadRequest, codeUnsupported, "grant_type must be password (the password is a Rampart token)"))
			return
		}
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(r.PostForm.Get("username")+":"+r.PostForm.Get("password"))))
		scopes = strings.Fields(r.PostForm.Get("scope"))
	} else {
		for _, sc := range r.URL.Query()["scope"] {
			scopes = append(scopes, strings.Fields(sc)...)
		}
	}
	if svc := r.FormValue("service"); svc != "" && svc != s.service {
		writeError(w, r, s.log, oci(http.StatusBadRequest, codeUnsupported, "unknown service %q (this registry is %q)", svc, s.service))
		return
	}
	if len(scopes) > maxScopes {
		writeError(w, r, s.log, oci(http.StatusBadRequest, codeUnsupported, "at most %d scopes per token", maxScopes))
		return
	}
	if user, pw, ok := r.BasicAuth(); ok && looksLikeRegistryToken(pw) {
		s.exchangeToken(w, r, user, pw, scopes)
		return
	}
	p, err := s.authn.Authenticate(r)
	if err != nil {
		writeError(w, r, s.log, &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Msg: "invalid credential: log in with a Rampart token as the password", challenge: s.challenge(r.Host, "", nil)})
		return
	}
	if user, _, ok := r.BasicAuth(); ok && p.Subject.Authenticated() && user != "" && user != p.User.Username {
		writeError(w, r, s.log, &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Msg: "the token does not belong to " + user, challenge: s.challenge(r.Host, "", nil)})
		return
	}
	if p.Subject.Authenticated() {
		ctx = authn.With(ctx, p)
	}
	var grants []Access
	for _, sc := range scopes {
		a, ok := parseScope(sc)
		if !ok {
			continue // unknown scope types (registry:catalog:*) grant nothing
		}
		a.Actions = s.allowedActions(ctx, caller{p: p}, a.Name, a.Actions)
		grants = append(grants, a)
	}
	tok, err := s.IssueToken(ctx, p, grants, s.tokenTTL, false)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(TokenResponse{Token: tok, AccessToken: tok, ExpiresIn: int(s.tokenTTL.Seconds()), IssuedAt: s.now().UTC()})
}

// allowedActions keeps the actions c may do on repository name.
func (s *Service) allowedActions(ctx context.Context, c caller, name string, actions []string) []string {
	t, err := s.resolve(ctx, name, false)
	if err != nil {
		return []string{}
	}
	out := []string{}
	for _, a := range actions {
		if s.repoAccess(ctx, c, t, a) == nil {
			out = append(out, a)
		}
	}
	return out
}

// IssueToken mints a registry token for p holding exactly grants, which
// the caller has already decided p may have. job marks a pipeline job's
// token. See MintRepositoryToken for the checked entry point.
func (s *Service) IssueToken(ctx context.Context, p *authn.Principal, grants []Access, ttl time.Duration, job bool) (string, error) {
	now := s.now()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	c := &claims{Issuer: "rampart", Audience: s.service, IssuedAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix(),
		ID: b64.EncodeToString(jti), Access: grants, Job: job}
	if grants == nil {
		c.Access = []Access{}
	}
	if p.Subject.Authenticated() {
		c.Subject, c.Name, c.Scopes = strconv.FormatInt(p.User.ID, 10), p.User.Username, p.Subject.Scopes
	}
	return s.sign(c)
}

// MintRepositoryToken issues a token limited to one repository and to
// pull, or pull and push, for principal p (a pipeline job acting for its
// trigger). It fails unless p may do every requested action; the token
// lives ttl (at most an hour). Minting is audited.
func (s *Service) MintRepositoryToken(ctx context.Context, p *authn.Principal, repo string, push bool, ttl time.Duration) (string, error) {
	if !validName(repo) {
		return "", apperr.InvalidField("repository", "invalid repository name %q", repo)
	}
	if ttl <= 0 || ttl > time.Hour {
		return "", apperr.InvalidField("ttl", "a job token lives between 1s and 1h")
	}
	actions := []string{actPull}
	if push {
		actions = append(actions, actPush)
	}
	ctx = authn.With(ctx, p)
	got := s.allowedActions(ctx, caller{p: p}, repo, actions)
	if len(got) != len(actions) {
		return "", apperr.E(apperr.Forbidden, "%s may not %s %s", p.User.Username, strings.Join(actions, "/"), repo)
	}
	tok, err := s.IssueToken(ctx, p, []Access{{Type: "repository", Name: repo, Actions: actions}}, ttl, true)
	if err != nil {
		return "", err
	}
	return tok, s.audit.Append(ctx, auditRecord("registry.token.mint", repo, 0, map[string]any{"actions": actions, "ttl_seconds": int(ttl.Seconds())}))
}

// withActor puts the caller into ctx for the audit log.
func withActor(ctx context.Context, c caller) context.Context {
	if id := c.userID(); id != 0 {
		return reqinfo.WithActor(ctx, id, c.userName())
	}
	return ctx
}

type hostKey struct{}

// withHost remembers the Host a request was sent to, for challenges.
func withHost(ctx context.Context, host string) context.Context {
	return context.WithValue(ctx, hostKey{}, host)
}

func hostOf(ctx context.Context) string {
	h, _ := ctx.Value(hostKey{}).(string)
	return h
}

// validHost accepts host[:port] made of name or address characters only.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}

// looksLikeRegistryToken reports whether a password is a registry token
// (a JWS) rather than a Rampart token. Clients that can only send Basic
// credentials — a Kubernetes pull secret — carry minted tokens this way.
func looksLikeRegistryToken(pw string) bool {
	return !strings.HasPrefix(pw, identity.TokenPrefix) && strings.Count(pw, ".") == 2 && len(pw) <= maxTokenLen
}

// exchangeToken answers a token request whose Basic password is a
// registry token (user name: its subject's, or empty): the new token
// holds the requested actions that token grants, no more, and expires
// with it.
func (s *Service) exchangeToken(w http.ResponseWriter, r *http.Request, user, raw string, scopes []string) {
	c, ok := parseToken(s.tokenKey, s.service, s.now(), raw)
	if !ok || (user != "" && user != c.Name) {
		writeError(w, r, s.log, &ociError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Msg: "invalid or expired registry token; log in again", challenge: s.challenge(r.Host, "", nil)})
		return
	}
	grants := []Access{}
	for _, sc := range scopes {
		a, ok := parseScope(sc)
		if !ok {
			continue
		}
		var keep []string
		for _, act := range a.Actions {
			if c.allows(a.Name, act) {
				keep = append(keep, act)
			}
		}
		if len(keep) > 0 {
			a.Actions = keep
			grants = append(grants, a)
		}
	}
	now := s.now()
	out := *c
	out.IssuedAt, out.Access = now.Unix(), grants
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	out.ID = b64.EncodeToString(jti)
	tok, err := s.sign(&out)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(TokenResponse{Token: tok, AccessToken: tok, ExpiresIn: int(c.ExpiresAt - now.Unix()), IssuedAt: now.UTC()})
}
