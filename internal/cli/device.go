package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity/oidcop"
)

// cliScopes are what `rampart login` asks for: an ID token, the owner's
// full API access, and a refresh token.
var cliScopes = []string{"openid", "admin", "offline_access"}

// oauthConfig is the rampart-cli client of a server.
func oauthConfig(server string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: oidcop.CLIClientID,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: server + oidcop.DeviceAuthPath,
			TokenURL:      server + oidcop.TokenPath,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		Scopes: cliScopes,
	}
}

// deviceLogin signs in through the OAuth device authorization grant: the
// user approves this device in a browser where they are signed in, while
// the CLI polls the token endpoint.
func (ce *cmdEnv) deviceLogin(cmd *cobra.Command, c *client, entry *serverEntry) error {
	ctx := context.WithValue(cmd.Context(), oauth2.HTTPClient, c.http)
	cfg := oauthConfig(c.base)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return oauthError(c.base, err)
	}
	fmt.Fprintf(ce.Stderr, "To sign in, open %s in a browser where you are signed in to Rampart\nand enter the code %s", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(ce.Stderr, " (or open %s)", da.VerificationURIComplete)
	}
	fmt.Fprintf(ce.Stderr, ".\nWaiting for approval…\n")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return oauthError(c.base, err)
	}
	c.token = tok.AccessToken
	entry.Token, entry.RefreshToken, entry.Expiry = tok.AccessToken, tok.RefreshToken, tok.Expiry
	return nil
}

// refreshToken trades a refresh token for a new access and refresh token.
func refreshToken(ctx context.Context, hc *http.Client, server, refresh string) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	tok, err := oauthConfig(server).TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		return nil, oauthError(server, err)
	}
	return tok, nil
}

// oauthError classifies an error of the OAuth endpoints.
func oauthError(server string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			return apperr.E(apperr.Forbidden, "the sign-in was denied in the browser")
		case "expired_token":
			return apperr.E(apperr.Unauthenticated, "the code expired before it was approved; run 'rampart login' again")
		case "invalid_grant":
			return apperr.E(apperr.Unauthenticated, "your sign-in has expired or was revoked; run 'rampart login --server %s' again", server)
		}
		msg := re.ErrorDescription
		if msg == "" {
			msg = re.ErrorCode
		}
		if re.Response != nil && re.Response.StatusCode >= 500 {
			return fmt.Errorf("server error: %s", msg)
		}
		return apperr.E(apperr.Invalid, "the server refused: %s", msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return apperr.Wrap(err, apperr.Unavailable, "cannot reach "+server+": "+shortNetErr(err))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(err, apperr.Unavailable, "gave up waiting for the sign-in")
	}
	return err
}

// expirySkew is how long before its expiry an access token is refreshed.
const expirySkew = 2 * time.Second

// oauthSession keeps an OAuth login's tokens fresh: it refreshes the
// access token when it is about to expire (or the server refused it) and
// saves the new pair.
type oauthSession struct {
	ce     *cmdEnv
	server string
	entry  *serverEntry
}

func (s *oauthSession) expired(now time.Time) bool {
	return !s.entry.Expiry.IsZero() && !now.Add(expirySkew).Before(s.entry.Expiry)
}

// refresh gets a new token pair and saves it; it returns the new access
// token.
func (s *oauthSession) refresh(ctx context.Context, hc *http.Client) (string, error) {
	tok, err := refreshToken(ctx, hc, s.server, s.entry.RefreshToken)
	if err != nil {
		return "", err
	}
	creds, path, err := s.ce.loadCredentials()
	if err != nil {
		return "", err
	}
	e := creds.Servers[s.server]
	if e == nil {
		e = s.entry
		creds.Servers[s.server] = e
	}
	e.Token, e.Expiry = tok.AccessToken, tok.Expiry
	if tok.RefreshToken != "" {
		e.RefreshToken = tok.RefreshToken
	}
	if err := creds.save(path); err != nil {
		return "", fmt.Errorf("save refreshed credentials: %w", err)
	}
	*s.entry = *e
	return tok.AccessToken, nil
}

// revokeRefresh asks the server to end an OAuth login (best effort).
func revokeRefresh(ctx context.Context, hc *http.Client, server, refresh string) error {
	form := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}, "client_id": {oidcop.CLIClientID}}
	req, err := http.NewRequestWithContext(ctx, "POST", server+oidcop.RevokePath, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "cannot reach "+server)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apperr.E(apperr.Invalid, "revocation answered %s", resp.Status)
	}
	return nil
}
