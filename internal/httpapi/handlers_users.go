package httpapi

import (
	"github.com/rampartsec/rampart/internal/identity"
)

func (s *Server) listUsers(c *Call) error {
	q := c.R.URL.Query().Get("q")
	if len(q) > 64 {
		q = q[:64]
	}
	us, err := s.ids.ListUsers(c.R.Context(), q, 500)
	if err != nil {
		return err
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		w := UserOf(u)
		if !c.P.Subject.SiteAdmin && u.ID != c.P.User.ID {
			w.Email = "" // e-mail addresses are for administrators and their owners
		}
		out = append(out, w)
	}
	return c.JSON(out)
}

func (s *Server) createUser(c *Call) error {
	var req CreateUserRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	u, err := s.ids.CreateUser(c.R.Context(), identity.NewUser{Username: req.Username, Email: req.Email,
		DisplayName: req.DisplayName, Password: req.Password, SiteAdmin: req.SiteAdmin, EmailVerified: req.EmailVerified})
	if err != nil {
		return err
	}
	return c.JSON(UserOf(u))
}

func (s *Server) getUser(c *Call) error {
	u, err := s.ids.UserByName(c.R.Context(), c.R.PathValue("username"))
	if err != nil {
		return err
	}
	w := UserOf(u)
	if !c.P.Subject.SiteAdmin && u.ID != c.P.User.ID {
		w.Email = ""
	}
	return c.JSON(w)
}

func (s *Server) updateUser(c *Call) error {
	var req UpdateUserRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ctx := c.R.Context()
	u, err := s.ids.UserByName(ctx, c.R.PathValue("username"))
	if err != nil {
		return err
	}
	if req.Disabled != nil {
		if err := s.ids.SetDisabled(ctx, u.ID, *req.Disabled); err != nil {
			return err
		}
	}
	if u, err = s.ids.User(ctx, u.ID); err != nil {
		return err
	}
	return c.JSON(UserOf(u))
}
