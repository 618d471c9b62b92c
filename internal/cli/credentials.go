package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// credentials is what `rampart login` saves, per server.
type credentials struct {
	Current string                  `json:"current"`
	Servers map[string]*serverEntry `json:"servers"`
}

type serverEntry struct {
	Token        string    `json:"token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitempty"`
	CACert       string    `json:"ca_cert,omitempty"`
	Username     string    `json:"username,omitempty"`
	TokenID      int64     `json:"token_id,omitempty"`
}

func (ce *cmdEnv) configDir() (string, error) {
	if d := ce.Getenv("RAMPART_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := ce.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "rampart"), nil
	}
	if h := ce.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "rampart"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", apperr.Wrap(err, apperr.Invalid, "no config directory; set RAMPART_CONFIG_DIR")
	}
	return filepath.Join(d, "rampart"), nil
}

func (ce *cmdEnv) loadCredentials() (*credentials, string, error) {
	dir, err := ce.configDir()
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "credentials.json")
	c := &credentials{Servers: map[string]*serverEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, "", apperr.Wrap(err, apperr.Invalid, path+" is corrupt; delete it and log in again")
	}
	if c.Servers == nil {
		c.Servers = map[string]*serverEntry{}
	}
	return c, path, nil
}

// save writes the credentials file (mode 0600) atomically.
func (c *credentials) save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func normalizeServer(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s != "" && !strings.Contains(s, "://") {
		s = "https://" + s
	}
	return s
}

// client returns an API client for the selected server with its saved
// credential (or RAMPART_TOKEN).
func (ce *cmdEnv) client() (*client, error) {
	creds, _, err := ce.loadCredentials()
	if err != nil {
		return nil, err
	}
	server := normalizeServer(ce.server)
	if server == "" {
		server = normalizeServer(ce.Getenv("RAMPART_SERVER"))
	}
	if server == "" {
		server = creds.Current
	}
	if server == "" {
		return nil, apperr.E(apperr.Unauthenticated, "not logged in: run 'rampart login --server URL' first")
	}
	entry := creds.Servers[server]
	token := ce.Getenv("RAMPART_TOKEN")
	ca := ce.Getenv("RAMPART_CA_CERT")
	var oauth *oauthSession
	if entry != nil {
		if token == "" {
			token = entry.Token
			if entry.RefreshToken != "" {
				oauth = &oauthSession{ce: ce, server: server, entry: entry}
			}
		}
		if ca == "" {
			ca = entry.CACert
		}
	}
	if token == "" {
		return nil, apperr.E(apperr.Unauthenticated, "not logged in to %s: run 'rampart login --server %s'", server, server)
	}
	hc, err := newHTTPClient(ca)
	if err != nil {
		return nil, err
	}
	return &client{base: server, token: token, http: hc, oauth: oauth}, nil
}
