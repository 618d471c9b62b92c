package web

// Security keys and passkeys in the browser. rampart.js drives each
// ceremony with fetch: a begin call returns the options for
// navigator.credentials.create or .get, a finish call posts the browser's
// answer. Both carry the CSRF token in X-CSRF-Token and answer JSON, with
// {"error": message} on failure. The ceremonies themselves (and their
// server-side state) are identity's.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpmw"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// webauthnCookie binds a passkey sign-in to the browser that began it: it
// holds a random value, never ceremony state.
const webauthnCookie = "rampart_webauthn"

// maxKeyNameBody caps the body of a registration's begin call.
const maxKeyNameBody = 4 << 10

// fetchHandler adapts a JSON endpoint: the result is written as JSON, an
// error as {"error": message} with its status.
func (s *Server) fetchHandler(h func(c *Ctx) (any, error)) func(c *Ctx) error {
	return func(c *Ctx) error {
		v, err := h(c)
		if err != nil {
			return s.writeJSONError(c, err)
		}
		return writeJSON(c, http.StatusOK, v)
	}
}

func writeJSON(c *Ctx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", "application/json")
	c.W.WriteHeader(status)
	_, err = c.W.Write(append(b, '\n'))
	return err
}

func (s *Server) writeJSONError(c *Ctx, err error) error {
	k := apperr.KindOf(err)
	msg := apperr.Message(err)
	switch k {
	case apperr.Internal:
		s.log.ErrorContext(c.R.Context(), "page failed", logging.KeyErr, err, logging.KeyPath, c.R.URL.Path)
		msg = "Something went wrong on our side. Quote request id " + reqinfo.From(c.R.Context()).RequestID + " to your administrator."
	case apperr.Unavailable:
		s.log.WarnContext(c.R.Context(), "page unavailable", logging.KeyErr, err, logging.KeyPath, c.R.URL.Path)
	}
	if d := apperr.RetryAfterOf(err); d > 0 {
		c.W.Header().Set("Retry-After", strconv.Itoa(int(d.Round(time.Second)/time.Second)))
	}
	return writeJSON(c, statusOf(k), map[string]string{"error": msg})
}

// readBody reads a request body of at most limit bytes.
func readBody(c *Ctx, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.W, c.R.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, apperr.E(apperr.TooLarge, "request body too large")
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "could not read the request body")
	}
	return b, nil
}

// decodeKeyName reads the body of a registration's begin call:
// {"name": "…"}, nothing else.
func decodeKeyName(b []byte) (string, error) {
	var req struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", apperr.Wrap(err, apperr.Invalid, `the request must be a JSON object {"name": "…"}`)
	}
	if dec.More() {
		return "", apperr.E(apperr.Invalid, "the request must hold one JSON object")
	}
	return req.Name, nil
}

// sessionOf returns the browser session of a signed-in page request.
func sessionOf(c *Ctx) (identity.Session, error) {
	if c.P.Session == nil {
		return identity.Session{}, apperr.E(apperr.Forbidden, "security keys are managed from a browser session")
	}
	return *c.P.Session, nil
}

func (s *Server) webauthnRegisterBegin(c *Ctx) (any, error) {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return nil, err
	}
	sess, err := sessionOf(c)
	if err != nil {
		return nil, err
	}
	body, err := readBody(c, maxKeyNameBody)
	if err != nil {
		return nil, err
	}
	name, err := decodeKeyName(body)
	if err != nil {
		return nil, err
	}
	return s.ids.BeginWebAuthnRegistration(c.R.Context(), c.P.User, sess.IDHash, name)
}

// registeredKey is the answer to a finished registration.
type registeredKey struct {
	Name    string `json:"name"`
	Passkey bool   `json:"passkey"`
	// RecoveryCodes are set when the key is the user's first second
	// factor: shown once.
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

func (s *Server) webauthnRegisterFinish(c *Ctx) (any, error) {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return nil, err
	}
	sess, err := sessionOf(c)
	if err != nil {
		return nil, err
	}
	body, err := readBody(c, identity.MaxWebAuthnResponse)
	if err != nil {
		return nil, err
	}
	ctx := c.R.Context()
	key, codes, err := s.ids.FinishWebAuthnRegistration(ctx, c.P.User, sess.IDHash, body)
	if err != nil {
		return nil, err
	}
	// The session just proved possession of the new key.
	if _, err := s.ids.AddSessionMethods(ctx, sess, identity.AMRHardware); err != nil {
		return nil, err
	}
	return registeredKey{Name: key.Name, Passkey: key.Discoverable, RecoveryCodes: codes}, nil
}

func (s *Server) webauthnRemove(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil {
		return apperr.E(apperr.NotFound, "no such security key")
	}
	if err := s.ids.RemoveWebAuthnKey(c.R.Context(), c.P.User.ID, id); err != nil {
		return s.accountFormError(c, err)
	}
	return c.Redirect("/account", "Security key removed.")
}

// securityKeyList lists the signed-in user's keys for the account page.
func (s *Server) securityKeyList(c *Ctx) ([]SecurityKey, error) {
	keys, err := s.ids.WebAuthnKeys(c.R.Context(), c.P.User.ID)
	if err != nil {
		return nil, err
	}
	out := make([]SecurityKey, len(keys))
	for i, k := range keys {
		name := k.Name
		if k.Discoverable {
			name += " (passkey)"
		}
		last := "never"
		if !k.LastUsedAt.IsZero() {
			last = displayTime(k.LastUsedAt)
		}
		out[i] = SecurityKey{ID: k.ID, Name: name, CreatedAt: displayTime(k.CreatedAt), LastUsed: last}
	}
	return out, nil
}

func displayTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// enrolKeyBegin starts registering a security key as the first second
// factor of a user whose org requires one, during sign-in.
func (s *Server) enrolKeyBegin(c *Ctx) (any, error) {
	sess, u, p, err := s.pending(c)
	if err != nil {
		return nil, err
	}
	if !p.MustEnrol {
		return nil, apperr.E(apperr.Invalid, "no second factor needs to be set up")
	}
	body, err := readBody(c, maxKeyNameBody)
	if err != nil {
		return nil, err
	}
	name, err := decodeKeyName(body)
	if err != nil {
		return nil, err
	}
	return s.ids.BeginWebAuthnRegistration(c.R.Context(), u, sess.IDHash, name)
}

// enrolledKey answers a key registered during sign-in: the session is now
// signed in, the recovery codes are shown once, then the browser goes on.
type enrolledKey struct {
	registeredKey
	Next string `json:"next"`
}

func (s *Server) enrolKeyFinish(c *Ctx) (any, error) {
	sess, u, p, err := s.pending(c)
	if err != nil {
		return nil, err
	}
	if !p.MustEnrol {
		return nil, apperr.E(apperr.Invalid, "no second factor needs to be set up")
	}
	body, err := readBody(c, identity.MaxWebAuthnResponse)
	if err != nil {
		return nil, err
	}
	key, codes, err := s.ids.FinishWebAuthnRegistration(c.R.Context(), u, sess.IDHash, body)
	if err != nil {
		return nil, err
	}
	// Registering the key proved possession of it: the sign-in is complete.
	if err := s.activateLogin(c, sess, u, p, identity.AMRHardware); err != nil {
		return nil, err
	}
	return enrolledKey{registeredKey: registeredKey{Name: key.Name, Passkey: key.Discoverable, RecoveryCodes: codes}, Next: p.Next}, nil
}

// nextAfterLogin is where a sign-in finished with fetch sends the browser.
type nextAfterLogin struct {
	Next string `json:"next"`
}

func (s *Server) webauthnLoginBegin(c *Ctx) (any, error) {
	sess, u, p, err := s.pending(c)
	if err != nil {
		return nil, err
	}
	if p.MustEnrol {
		return nil, apperr.E(apperr.Invalid, "set up two-factor authentication first")
	}
	return s.ids.BeginWebAuthnLogin(c.R.Context(), u, sess.IDHash, httpmw.ClientIP(c.R))
}

func (s *Server) webauthnLoginFinish(c *Ctx) (any, error) {
	sess, u, p, err := s.pending(c)
	if err != nil {
		return nil, err
	}
	body, err := readBody(c, identity.MaxWebAuthnResponse)
	if err != nil {
		return nil, err
	}
	amr, err := s.ids.FinishWebAuthnLogin(c.R.Context(), u, sess.IDHash, httpmw.ClientIP(c.R), body)
	if err != nil {
		return nil, err
	}
	if err := s.activateLogin(c, sess, u, p, amr); err != nil {
		return nil, err
	}
	return nextAfterLogin{Next: p.Next}, nil
}

func (s *Server) passkeyBegin(c *Ctx) (any, error) {
	binding, err := randomToken()
	if err != nil {
		return nil, err
	}
	opts, err := s.ids.BeginPasskeyLogin(c.R.Context(), binding, httpmw.ClientIP(c.R))
	if err != nil {
		return nil, err
	}
	http.SetCookie(c.W, &http.Cookie{Name: webauthnCookie, Value: binding, Path: "/login/passkey", HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteStrictMode, MaxAge: 5 * 60})
	return opts, nil
}

func (s *Server) passkeyFinish(c *Ctx) (any, error) {
	ck, err := c.R.Cookie(webauthnCookie)
	if err != nil || strings.TrimSpace(ck.Value) == "" {
		return nil, apperr.E(apperr.Unauthenticated, "the passkey request expired; try again")
	}
	// The ceremony is spent whatever happens next.
	http.SetCookie(c.W, &http.Cookie{Name: webauthnCookie, Value: "", Path: "/login/passkey", HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	body, err := readBody(c, identity.MaxWebAuthnResponse)
	if err != nil {
		return nil, err
	}
	ctx := c.R.Context()
	ip := httpmw.ClientIP(c.R)
	u, amr, err := s.ids.FinishPasskeyLogin(ctx, ck.Value, ip, body)
	if err != nil {
		return nil, err
	}
	sess, err := s.ids.StartSession(ctx, u.ID, identity.SessionActive, amr, ip, c.R.UserAgent())
	if err != nil {
		return nil, err
	}
	if err := s.ids.LoginSucceeded(ctx, u, amr, "web:passkey"); err != nil {
		return nil, err
	}
	s.setSessionCookie(c.W, sess.Raw, sess.ExpiresAt)
	return nextAfterLogin{Next: SafeNext(c.R.URL.Query().Get("next"))}, nil
}
