package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpmw"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// ParseLifetime reads a token lifetime: a Go duration ("720h") or whole
// days ("30d"). Empty means the default.
func ParseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 366 {
			return 0, apperr.InvalidField("expires_in", "expires_in %q must be 1d to 366d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, apperr.InvalidField("expires_in", "expires_in %q must be a duration like 720h or 30d", s)
	}
	if d < identity.MinTokenLifetime || d > identity.MaxTokenLifetime {
		return 0, apperr.InvalidField("expires_in", "expires_in %q must be between 1m and 366d", s)
	}
	return d, nil
}

func (s *Server) login(c *Call) error {
	var req LoginRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	// Check the token request before the password, so that a request
	// that cannot succeed records neither a sign-in nor a failure.
	names := req.Scopes
	if len(names) == 0 {
		names = []string{string(authz.ScopeAdmin)}
	}
	scopes, err := authz.ParseScopes(names)
	if err != nil {
		return err
	}
	life, err := ParseLifetime(req.ExpiresIn)
	if err != nil {
		return err
	}
	name := req.TokenName
	if name == "" {
		name = "rampart login"
	}
	if err := identity.ValidateTokenName("token_name", name); err != nil {
		return err
	}
	ctx := c.R.Context()
	ip := httpmw.ClientIP(c.R)
	res, err := s.ids.PasswordLogin(ctx, req.Username, req.Password, ip)
	if err != nil {
		return err
	}
	u := res.User
	amr := []string{identity.AMRPassword}
	switch {
	case len(res.Factors) > 0:
		if req.OTP == "" {
			return &apperr.Error{Kind: apperr.Unauthenticated, Field: "otp",
				Msg: "this account has a second factor: send a code from your authenticator app or a recovery code (rampart login --otp), or sign in with the browser"}
		}
		m, err := s.ids.VerifyOneTimeCode(ctx, u, req.OTP, ip)
		if err != nil {
			return err
		}
		amr = append(amr, m)
	case res.MustEnrol:
		return apperr.E(apperr.Forbidden, "an org of yours requires a second factor: sign in with the browser and enrol one first")
	}
	ctx = reqinfo.WithActor(ctx, u.ID, u.Username)
	if err := s.ids.LoginSucceeded(ctx, u, amr, "api"); err != nil {
		return err
	}
	secret, t, err := s.ids.CreateToken(ctx, u.ID, identity.NewToken{Name: name, Kind: identity.TokenCLI, Scopes: scopes, Lifetime: life})
	if err != nil {
		return err
	}
	return c.JSON(LoginResponse{User: UserOf(u), Token: CreatedToken{Token: TokenOf(t, s.ids.Now()), Secret: secret}})
}

func (s *Server) listScopes(c *Call) error {
	var out []Scope
	for _, sc := range authz.Scopes() {
		out = append(out, Scope{Name: string(sc.Name), Description: sc.Description})
	}
	return c.JSON(out)
}

func (s *Server) me(c *Call) error {
	ctx := c.R.Context()
	u := c.P.User
	st, err := s.ids.MFAStatus(ctx, u.ID)
	if err != nil {
		return err
	}
	orgs, err := s.ids.OrgsOf(ctx, u.ID)
	if err != nil {
		return err
	}
	me := Me{User: UserOf(u), MFA: MFAStatus{TOTP: st.TOTP, SecurityKeys: st.WebAuthn, RecoveryCodes: st.RecoveryLeft},
		Credential: c.P.Subject.Via, Orgs: []OrgRole{}, HasPassword: u.HasPassword}
	for _, sc := range c.P.Subject.Scopes {
		me.Scopes = append(me.Scopes, string(sc))
	}
	for _, o := range orgs {
		me.Orgs = append(me.Orgs, OrgRole{Org: o.Name, Role: c.P.Subject.OrgRole(o.ID).String()})
	}
	return c.JSON(me)
}

func (s *Server) updateProfile(c *Call) error {
	var req UpdateProfileRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	u := c.P.User
	name, email := u.DisplayName, u.Email
	if req.DisplayName != nil {
		name = *req.DisplayName
	}
	if req.Email != nil {
		email = *req.Email
	}
	nu, err := s.ids.UpdateProfile(c.R.Context(), u.ID, name, email)
	if err != nil {
		return err
	}
	return c.JSON(UserOf(nu))
}

func (s *Server) changePassword(c *Call) error {
	var req ChangePasswordRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	keep := ""
	if c.P.Session != nil {
		keep = c.P.Session.Raw
	}
	if err := s.ids.ChangePassword(c.R.Context(), c.P.User.ID, req.CurrentPassword, req.NewPassword, keep); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Server) listTokens(c *Call) error {
	return s.writeTokens(c, c.P.User.ID)
}

func (s *Server) writeTokens(c *Call, userID int64) error {
	ts, err := s.ids.Tokens(c.R.Context(), userID)
	if err != nil {
		return err
	}
	now := s.ids.Now()
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, TokenOf(t, now))
	}
	return c.JSON(out)
}

func (s *Server) createToken(c *Call) error {
	return s.createTokenFor(c, c.P.User.ID, identity.TokenPersonal)
}

func (s *Server) createTokenFor(c *Call, userID int64, kind string) error {
	var req CreateTokenRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	scopes, err := authz.ParseScopes(req.Scopes)
	if err != nil {
		return err
	}
	// A token cannot carry more than the credential creating it.
	for _, sc := range scopes {
		if !c.P.Subject.HasScope(sc) {
			return apperr.E(apperr.Forbidden, "your credential lacks the %q scope, so it cannot grant it", sc)
		}
	}
	life, err := ParseLifetime(req.ExpiresIn)
	if err != nil {
		return err
	}
	secret, t, err := s.ids.CreateToken(c.R.Context(), userID, identity.NewToken{Name: req.Name, Kind: kind, Scopes: scopes, Lifetime: life})
	if err != nil {
		return err
	}
	return c.JSON(CreatedToken{Token: TokenOf(t, s.ids.Now()), Secret: secret})
}

func pathID(c *Call, name string) (int64, error) {
	id, err := strconv.ParseInt(c.R.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.InvalidField(name, "%s must be a positive number", name)
	}
	return id, nil
}

func (s *Server) revokeToken(c *Call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.ids.RevokeToken(c.R.Context(), c.P.User.ID, id); err != nil {
		return err
	}
	return c.NoContent()
}
