package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

type accountView struct {
	MFA      identity.MFAStatus
	Tokens   []identity.Token
	Sessions []identity.Session
	Current  string
	Scopes   []authz.ScopeInfo
	Now      func() bool
	// Extra holds sections contributed by other parts of the UI (security
	// keys).
	Keys []SecurityKey
}

// SecurityKey is a registered WebAuthn credential as the account page
// lists it.
type SecurityKey struct {
	ID        int64
	Name      string
	CreatedAt string
	LastUsed  string
}

type recoveryView struct {
	Codes []string
	Next  string
}

type tokenCreatedView struct {
	Token  identity.Token
	Secret string
}

func (c *Ctx) self() authz.Resource { return authz.Resource{OwnerID: c.P.User.ID} }

func (s *Server) accountData(c *Ctx) (accountView, error) {
	ctx := c.R.Context()
	uid := c.P.User.ID
	var v accountView
	var err error
	if v.MFA, err = s.ids.MFAStatus(ctx, uid); err != nil {
		return v, err
	}
	if v.Tokens, err = s.ids.Tokens(ctx, uid); err != nil {
		return v, err
	}
	if v.Sessions, err = s.ids.Sessions(ctx, uid); err != nil {
		return v, err
	}
	if c.P.Session != nil {
		v.Current = c.P.Session.IDHash
	}
	v.Scopes = authz.Scopes()
	if s.securityKeys != nil {
		if v.Keys, err = s.securityKeys(c); err != nil {
			return v, err
		}
	}
	return v, nil
}

func (s *Server) accountPage(c *Ctx) error {
	if err := c.Check(authz.SelfRead, c.self()); err != nil {
		return err
	}
	v, err := s.accountData(c)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "account", "Your account", v)
}

func (s *Server) accountFormError(c *Ctx, err error) error {
	v, verr := s.accountData(c)
	if verr != nil {
		return verr
	}
	return c.RenderForm("account", "Your account", v, err)
}

func (s *Server) profileSubmit(c *Ctx) error {
	if err := c.Check(authz.SelfWrite, c.self()); err != nil {
		return err
	}
	if _, err := s.ids.UpdateProfile(c.R.Context(), c.P.User.ID, c.R.PostFormValue("display_name"), c.R.PostFormValue("email")); err != nil {
		return s.accountFormError(c, err)
	}
	return c.Redirect("/account", "Profile saved.")
}

func (s *Server) passwordSubmit(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	next := c.R.PostFormValue("new_password")
	if next != c.R.PostFormValue("confirm_password") {
		return s.accountFormError(c, apperr.InvalidField("confirm_password", "the new passwords do not match"))
	}
	if err := s.ids.ChangePassword(c.R.Context(), c.P.User.ID, c.R.PostFormValue("current_password"), next, c.P.Session.Raw); err != nil {
		return s.accountFormError(c, err)
	}
	return c.Redirect("/account", "Password changed. Your other sessions were signed out.")
}

func (s *Server) totpPage(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	en, err := s.ids.BeginTOTP(c.R.Context(), c.P.User.ID, s.issuer())
	if err != nil {
		if apperr.Is(err, apperr.Conflict) {
			return c.Redirect("/account", "An authenticator app is already enrolled.")
		}
		return err
	}
	return c.Render(http.StatusOK, "totp_enrol", "Add an authenticator app", loginView{Username: c.P.User.Username, TOTP: &en})
}

func (s *Server) totpSubmit(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	ctx := c.R.Context()
	codes, err := s.ids.ConfirmTOTP(ctx, c.P.User.ID, c.R.PostFormValue("code"))
	if err != nil {
		if !apperr.Is(err, apperr.Invalid) {
			return err
		}
		en, berr := s.ids.BeginTOTP(ctx, c.P.User.ID, s.issuer())
		if berr != nil {
			return berr
		}
		return c.RenderForm("totp_enrol", "Add an authenticator app", loginView{Username: c.P.User.Username, TOTP: &en}, err)
	}
	// The session now counts as MFA-authenticated: the user just proved
	// possession of the new factor.
	if _, err := s.ids.AddSessionMethods(ctx, *c.P.Session, identity.AMROTP); err != nil {
		return err
	}
	if len(codes) > 0 {
		return c.Render(http.StatusOK, "recovery_codes", "Save your recovery codes", recoveryView{Codes: codes, Next: "/account"})
	}
	return c.Redirect("/account", "Authenticator app enrolled.")
}

func (s *Server) totpRemove(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	if err := s.ids.RemoveTOTP(c.R.Context(), c.P.User.ID); err != nil {
		return s.accountFormError(c, err)
	}
	return c.Redirect("/account", "Authenticator app removed.")
}

func (s *Server) recoverySubmit(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	codes, err := s.ids.RegenerateRecoveryCodes(c.R.Context(), c.P.User.ID)
	if err != nil {
		return s.accountFormError(c, err)
	}
	return c.Render(http.StatusOK, "recovery_codes", "Save your recovery codes", recoveryView{Codes: codes, Next: "/account"})
}

func (s *Server) tokenSubmit(c *Ctx) error {
	if err := c.Check(authz.SelfWrite, c.self()); err != nil {
		return err
	}
	scopes, err := authz.ParseScopes(c.R.PostForm["scopes"])
	if err != nil {
		return s.accountFormError(c, err)
	}
	days, err := strconv.Atoi(strings.TrimSpace(c.R.PostFormValue("days")))
	if err != nil || days < 1 || days > 366 {
		return s.accountFormError(c, apperr.InvalidField("days", "expiry must be 1 to 366 days"))
	}
	secret, t, err := s.ids.CreateToken(c.R.Context(), c.P.User.ID, identity.NewToken{Name: c.R.PostFormValue("name"),
		Scopes: scopes, Lifetime: dayDuration(days)})
	if err != nil {
		return s.accountFormError(c, err)
	}
	return c.Render(http.StatusOK, "token_created", "Token created", tokenCreatedView{Token: t, Secret: secret})
}

func (s *Server) tokenRevoke(c *Ctx) error {
	if err := c.Check(authz.SelfWrite, c.self()); err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil {
		return apperr.E(apperr.NotFound, "no such token")
	}
	if err := s.ids.RevokeToken(c.R.Context(), c.P.User.ID, id); err != nil {
		return s.accountFormError(c, err)
	}
	return c.Redirect("/account", "Token revoked.")
}

func (s *Server) sessionRevoke(c *Ctx) error {
	if err := c.Check(authz.SelfSecurity, c.self()); err != nil {
		return err
	}
	if err := s.ids.RevokeSession(c.R.Context(), c.P.User.ID, c.R.PathValue("id")); err != nil {
		return s.accountFormError(c, err)
	}
	return c.Redirect("/account", "Session signed out.")
}
