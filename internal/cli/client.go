package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/problem"
)

// client calls the Rampart API.
type client struct {
	base  string
	token string
	http  *http.Client
	// oauth is set when the token came from an OAuth login with a
	// refresh token: do refreshes it when it expires or is refused.
	oauth *oauthSession
}

// newHTTPClient returns an HTTP client trusting caFile (when set) in
// addition to the system roots.
func newHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "read CA certificate "+caFile)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, apperr.E(apperr.Invalid, "%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// do sends a request with a JSON body (when in is non-nil) and decodes a
// JSON response into out (when non-nil). API errors come back classified.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	if c.oauth != nil && c.oauth.expired(time.Now()) {
		if err := c.refresh(ctx); err != nil {
			return err
		}
	}
	resp, err := c.send(ctx, method, path, in != nil, body)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized && c.oauth != nil {
		// The access token may have expired early or been revoked: one
		// refresh, one retry.
		resp.Body.Close()
		if err := c.refresh(ctx); err != nil {
			return err
		}
		if resp, err = c.send(ctx, method, path, in != nil, body); err != nil {
			return err
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return responseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err := io.Copy(w, resp.Body)
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

func (c *client) send(ctx context.Context, method, path string, hasBody bool, body []byte) (*http.Response, error) {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "bad request URL")
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, "cannot reach "+c.base+": "+shortNetErr(err))
	}
	return resp, nil
}

// refresh replaces an OAuth access token with a fresh one (saved for the
// next command); it is refreshed at most once per command.
func (c *client) refresh(ctx context.Context) error {
	tok, err := c.oauth.refresh(ctx, c.http)
	if err != nil {
		return err
	}
	c.token = tok
	c.oauth = nil
	return nil
}

func shortNetErr(err error) string {
	var ue *url.Error
	s := err.Error()
	if e, ok := err.(*url.Error); ok {
		ue = e
		s = ue.Err.Error()
	}
	if strings.Contains(s, "certificate signed by unknown authority") {
		return s + " (pass the server's CA with --ca-cert; it is tls/ca.crt in its data directory)"
	}
	return s
}

// responseError turns an error response (RFC 9457 problem details) into a
// classified error.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p problem.Details
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &p) == nil && p.Status != 0 {
		msg = p.Detail
		if msg == "" {
			msg = p.Title
		}
	}
	if msg == "" {
		msg = resp.Status
	}
	k := apperr.Internal
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType:
		k = apperr.Invalid
	case http.StatusUnauthorized:
		k = apperr.Unauthenticated
	case http.StatusForbidden:
		k = apperr.Forbidden
	case http.StatusNotFound:
		k = apperr.NotFound
	case http.StatusConflict:
		k = apperr.Conflict
	case http.StatusTooManyRequests:
		k = apperr.TooManyRequests
	case http.StatusRequestEntityTooLarge:
		k = apperr.TooLarge
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		k = apperr.Unavailable
	}
	if k == apperr.Internal {
		return fmt.Errorf("server error: %s", msg)
	}
	return &apperr.Error{Kind: k, Msg: msg, Field: p.Field}
}
