package federation

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

// upstreamIdentity is what a verified ID token says about the user.
type upstreamIdentity struct {
	Issuer        string
	Subject       string
	Username      string // the provider's username claim, as sent
	Email         string
	EmailVerified bool
	Name          string
	AMR           []string
}

// mfaMethods are amr values (RFC 8176) that prove a second factor.
var mfaMethods = []string{"otp", "hwk", "mfa"}

// mfa reports whether the upstream says the user proved a second factor.
func (id upstreamIdentity) mfa() bool {
	return slices.ContainsFunc(id.AMR, func(m string) bool { return slices.Contains(mfaMethods, m) })
}

// identityFromClaims reads the claims Rampart uses. Claims of the wrong
// type are ignored; only a missing subject is an error.
func identityFromClaims(claims map[string]any, usernameClaim string) (upstreamIdentity, error) {
	var id upstreamIdentity
	str := func(k string) string {
		s, _ := claims[k].(string)
		return s
	}
	id.Subject = str("sub")
	if id.Subject == "" || len(id.Subject) > 255 {
		return id, apperr.E(apperr.Unauthenticated, "the identity provider sent no usable subject")
	}
	id.Username = str(usernameClaim)
	if e := strings.TrimSpace(str("email")); e != "" {
		if a, err := mail.ParseAddress(e); err == nil && a.Address == e && a.Name == "" && len(e) <= 254 {
			id.Email = strings.ToLower(e)
		}
	}
	// Some providers send "true" as a string.
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v && id.Email != ""
	case string:
		id.EmailVerified = v == "true" && id.Email != ""
	}
	id.Name = cleanDisplayName(str("name"))
	switch v := claims["amr"].(type) {
	case []any:
		for _, m := range v {
			if s, ok := m.(string); ok && len(id.AMR) < 16 {
				id.AMR = append(id.AMR, s)
			}
		}
	case string:
		id.AMR = []string{v}
	}
	return id, nil
}

// cleanDisplayName drops control characters and cuts to 100 bytes.
func cleanDisplayName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(truncate(strings.TrimSpace(s), 100))
}

// SanitizeUsername turns an upstream user name (or e-mail address) into a
// valid Rampart user name: the part before any '@', lowercased, other
// characters replaced by '-', cut to 40; "user" when nothing usable is
// left.
func SanitizeUsername(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() >= 80 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	for strings.Contains(out, "..") {
		out = strings.ReplaceAll(out, "..", ".")
	}
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	trim := func(s string) string {
		return strings.TrimFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	}
	out = trim(out)
	if len(out) > 40 {
		out = trim(out[:40])
	}
	if identity.ValidateName("username", out) != nil {
		return "user"
	}
	return out
}

// candidateName returns the i-th name tried for base: base, base-2, ….
func candidateName(base string, i int) string {
	if i == 0 {
		return base
	}
	suffix := "-" + strconv.Itoa(i+1)
	return strings.TrimRight(truncate(base, 40-len(suffix)), "._-") + suffix
}

// resolve maps an upstream identity onto a user: its link first, then a
// member of the org with the same verified e-mail (when the provider
// allows it), then a new user (when the provider creates users). The user
// then becomes an org member with the provider's role if not one already.
// A refusal returns the user it concerns, if any.
func (s *Service) resolve(ctx context.Context, p Provider, org identity.Org, id upstreamIdentity) (identity.User, bool, error) {
	var (
		u       identity.User
		created bool
		err     error
	)
	// A lost race (two sign-ins creating the same link or user name)
	// shows up as a conflict: the next round finds the winner's work.
	for range 3 {
		u, created, err = s.resolveOnce(ctx, p, org, id)
		if !apperr.Is(err, apperr.Conflict) {
			break
		}
	}
	if err != nil {
		return u, false, err
	}
	ctx = reqinfo.WithActor(ctx, u.ID, u.Username)
	sub, err := s.ids.Subject(ctx, u, nil, authn.ViaSession)
	if err != nil {
		return u, false, err
	}
	if sub.OrgRole(org.ID) == authz.NoRole {
		if err := s.ids.SetMember(ctx, org.ID, u.ID, p.Role); err != nil {
			return u, false, fmt.Errorf("add %s to %s: %w", u.Username, org.Name, err)
		}
	}
	return u, created, nil
}

func (s *Service) resolveOnce(ctx context.Context, p Provider, org identity.Org, id upstreamIdentity) (identity.User, bool, error) {
	var uid int64
	err := s.db.QueryRow(ctx, "SELECT user_id FROM federation_links WHERE issuer = ? AND subject = ?", id.Issuer, id.Subject).Scan(&uid)
	switch {
	case err == nil:
		u, err := s.ids.User(ctx, uid)
		if err != nil {
			return u, false, err
		}
		if err := usable(u); err != nil {
			return u, false, err
		}
		_, err = s.db.Exec(ctx, "UPDATE federation_links SET last_login_at = ?, provider_id = ? WHERE issuer = ? AND subject = ?",
			store.Time(s.now()), p.ID, id.Issuer, id.Subject)
		return u, false, err
	case !apperr.Is(err, apperr.NotFound):
		return identity.User{}, false, err
	}

	if id.Email != "" && id.EmailVerified {
		u, err := s.ids.UserByEmail(ctx, id.Email)
		switch {
		case err == nil:
			return u, false, s.linkExisting(ctx, p, org, id, u)
		case !apperr.Is(err, apperr.NotFound):
			return identity.User{}, false, err
		}
	}
	if !p.CreateUsers {
		return identity.User{}, false, apperr.E(apperr.Forbidden,
			"no Rampart account is linked to your %s identity, and %s does not create accounts: ask an owner of %s", p.Label, p.Label, org.Name)
	}
	u, err := s.createUser(ctx, p, org, id)
	return u, err == nil, err
}

// usable refuses disabled users and service accounts.
func usable(u identity.User) error {
	if u.Disabled {
		return apperr.E(apperr.Forbidden, "this account is disabled")
	}
	if u.Kind != identity.KindHuman {
		return apperr.E(apperr.Forbidden, "service accounts cannot sign in")
	}
	return nil
}

// linkExisting links an upstream identity to the user with its verified
// e-mail address, if the provider allows it. Only members of the
// provider's org qualify, and never site administrators: an org owner
// controls the upstream, and must not gain anyone else's account through it.
func (s *Service) linkExisting(ctx context.Context, p Provider, org identity.Org, id upstreamIdentity, u identity.User) error {
	if !p.MatchEmail {
		return apperr.E(apperr.Forbidden,
			"a Rampart account with the e-mail address %s exists but is not linked to %s: sign in with your password, or ask an owner of %s to allow linking by e-mail",
			id.Email, p.Label, org.Name)
	}
	if err := usable(u); err != nil {
		return err
	}
	if u.SiteAdmin {
		return apperr.E(apperr.Forbidden, "site administrators are never linked by e-mail: sign in with your password")
	}
	sub, err := s.ids.Subject(ctx, u, nil, authn.ViaSession)
	if err != nil {
		return err
	}
	if sub.OrgRole(org.ID) == authz.NoRole {
		return apperr.E(apperr.Forbidden,
			"the Rampart account with the e-mail address %s is not a member of %s, so it is not linked by e-mail: sign in with your password, or ask an owner of %s to add you first",
			id.Email, org.Name, org.Name)
	}
	ctx = reqinfo.WithActor(ctx, u.ID, u.Username)
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		return s.insertLink(ctx, tx, p, org, id, u, "email")
	})
}

// createUser creates a user named after the provider's username claim
// (made valid and unique), linked to the upstream identity.
func (s *Service) createUser(ctx context.Context, p Provider, org identity.Org, id upstreamIdentity) (identity.User, error) {
	base := id.Username
	if base == "" {
		base = id.Email
	}
	base = SanitizeUsername(base)
	var name string
	for i := range 100 {
		c := candidateName(base, i)
		_, err := s.ids.UserByName(ctx, c)
		if apperr.Is(err, apperr.NotFound) {
			name = c
			break
		}
		if err != nil {
			return identity.User{}, err
		}
	}
	if name == "" {
		return identity.User{}, apperr.E(apperr.Conflict, "no free user name for %q", base)
	}
	var u identity.User
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		u, err = s.ids.CreateUserTx(ctx, tx, identity.NewUser{Username: name, Email: id.Email, DisplayName: id.Name,
			EmailVerified: id.EmailVerified})
		if err != nil {
			return err
		}
		actx := reqinfo.WithActor(ctx, u.ID, u.Username)
		if err := s.audit.AppendTx(actx, tx, audit.Record{Action: "user.create", OrgID: org.ID,
			Target: audit.Target{Type: "user", ID: strconv.FormatInt(u.ID, 10), Name: u.Username},
			Details: map[string]any{"via": "idp:" + p.Name, "org": org.Name, "email": u.Email, "email_verified": u.EmailVerified,
				"upstream_username": truncate(id.Username, 100)}}); err != nil {
			return err
		}
		return s.insertLink(actx, tx, p, org, id, u, "create")
	})
	return u, err
}

// insertLink records that an upstream identity is a user, and audits it.
func (s *Service) insertLink(ctx context.Context, tx *store.Tx, p Provider, org identity.Org, id upstreamIdentity, u identity.User, method string) error {
	now := s.now()
	if _, err := tx.Exec(ctx, `INSERT INTO federation_links (issuer, subject, user_id, provider_id, created_at, last_login_at)
		VALUES (?, ?, ?, ?, ?, ?)`, id.Issuer, id.Subject, u.ID, p.ID, store.Time(now), store.Time(now)); err != nil {
		return err
	}
	return s.audit.AppendTx(ctx, tx, audit.Record{Action: "federation.link", OrgID: org.ID,
		Target:  audit.Target{Type: "user", ID: strconv.FormatInt(u.ID, 10), Name: u.Username},
		Details: map[string]any{"idp": p.Name, "org": org.Name, "issuer": id.Issuer, "subject": id.Subject, "method": method}})
}

// Link is a user's upstream identity.
type Link struct {
	Issuer      string
	Subject     string
	UserID      int64
	CreatedAt   time.Time
	LastLoginAt time.Time
}

// Links returns the upstream identities linked to a user.
func (s *Service) Links(ctx context.Context, userID int64) ([]Link, error) {
	rows, err := s.db.Query(ctx, `SELECT issuer, subject, user_id, created_at, COALESCE(last_login_at, created_at)
		FROM federation_links WHERE user_id = ? ORDER BY issuer, subject`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		var l Link
		if err := rows.Scan(&l.Issuer, &l.Subject, &l.UserID, store.TimeDest(&l.CreatedAt), store.TimeDest(&l.LastLoginAt)); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
