// Package transitkms is a key-encryption key held by HashiCorp Vault's
// Transit secrets engine (or an API-compatible server such as OpenBao): the
// vault's data keys are sent to Transit's encrypt endpoint and come back as
// "vault:vN:…" ciphertexts, with the secret's id and version as Transit's
// associated data. The key never leaves that server; rotating it is
// Transit's key rotation, and re-wrapping uses its rewrap endpoint, so the
// plaintext data key does not travel for that either.
//
// It talks to Vault with the official client, github.com/hashicorp/vault/api.
package transitkms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/vault/keyring"
)

// Config says where the Transit key is.
type Config struct {
	// Address is the Vault server, e.g. https://vault.example:8200.
	Address string
	// Token authenticates to Vault; it needs update on MOUNT/encrypt/KEY,
	// MOUNT/decrypt/KEY and MOUNT/rewrap/KEY, read on MOUNT/keys/KEY, and
	// update on MOUNT/keys/KEY/rotate to rotate.
	Token string
	// Mount is the Transit engine's path (default "transit").
	Mount string
	// Key is the Transit key's name (default "rampart"). It must be an AEAD
	// key (aes256-gcm96, the default, or chacha20-poly1305).
	Key string
	// CACert is a PEM file to trust for Address, if needed.
	CACert string
	// Create makes the key when it is missing (type aes256-gcm96).
	Create bool
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
}

// KEK wraps data keys with a Transit key.
type KEK struct {
	c     *api.Client
	mount string
	key   string
}

var _ keyring.KEK = (*KEK)(nil)

var namePart = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}(/[A-Za-z0-9_.-]{1,128})*$`)

// New connects to Vault and checks that the key exists (creating it with
// Config.Create) and is an AEAD key.
func New(ctx context.Context, cfg Config) (*KEK, error) {
	if cfg.Mount == "" {
		cfg.Mount = "transit"
	}
	if cfg.Key == "" {
		cfg.Key = "rampart"
	}
	if !namePart.MatchString(cfg.Mount) || !namePart.MatchString(cfg.Key) || strings.Contains(cfg.Key, "/") {
		return nil, apperr.E(apperr.Invalid, "transit mount and key names may hold letters, digits, '.', '_' and '-'")
	}
	if cfg.Address == "" || cfg.Token == "" {
		return nil, apperr.E(apperr.Invalid, "the transit keyring needs a Vault address and token")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	vc := api.DefaultConfig()
	vc.Address = cfg.Address
	vc.Timeout = cfg.Timeout
	vc.MaxRetries = 2
	if cfg.CACert != "" {
		if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "transit CA certificate "+cfg.CACert)
		}
	}
	if vc.Error != nil {
		return nil, apperr.Wrap(vc.Error, apperr.Invalid, "transit client configuration")
	}
	c, err := api.NewClient(vc)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "transit client")
	}
	c.SetToken(cfg.Token)
	// The environment must not redirect a keyring's calls.
	c.SetNamespace("")
	k := &KEK{c: c, mount: cfg.Mount, key: cfg.Key}
	info, err := k.keyInfo(ctx)
	if apperr.Is(err, apperr.NotFound) && cfg.Create {
		if _, err := c.Logical().WriteWithContext(ctx, k.path("keys"), map[string]any{"type": "aes256-gcm96"}); err != nil {
			return nil, classify(err, "create transit key "+cfg.Key)
		}
		info, err = k.keyInfo(ctx)
	}
	if err != nil {
		return nil, err
	}
	if !info.aead {
		return nil, apperr.E(apperr.Invalid, "transit key %s has type %s; an AEAD key (aes256-gcm96 or chacha20-poly1305) is required", cfg.Key, info.typ)
	}
	return k, nil
}

func (k *KEK) path(op string) string { return k.mount + "/" + op + "/" + k.key }

// Kind implements keyring.KEK.
func (k *KEK) Kind() string { return "transit" }

type keyInfo struct {
	typ    string
	aead   bool
	latest int
}

func (k *KEK) keyInfo(ctx context.Context) (keyInfo, error) {
	s, err := k.c.Logical().ReadWithContext(ctx, k.path("keys"))
	if err != nil {
		return keyInfo{}, classify(err, "read transit key "+k.key)
	}
	if s == nil || s.Data == nil {
		return keyInfo{}, apperr.E(apperr.NotFound, "transit key %s does not exist on mount %s", k.key, k.mount)
	}
	ki := keyInfo{}
	ki.typ, _ = s.Data["type"].(string)
	ki.aead = ki.typ == "aes256-gcm96" || ki.typ == "aes128-gcm96" || ki.typ == "chacha20-poly1305"
	switch v := s.Data["latest_version"].(type) {
	case json.Number:
		n, _ := v.Int64()
		ki.latest = int(n)
	case float64:
		ki.latest = int(v)
	}
	if ki.latest < 1 {
		return keyInfo{}, apperr.E(apperr.Unavailable, "transit key %s reports no version", k.key)
	}
	return ki, nil
}

// Wrap implements keyring.KEK.
func (k *KEK) Wrap(ctx context.Context, dek, aad []byte) ([]byte, int, error) {
	s, err := k.c.Logical().WriteWithContext(ctx, k.path("encrypt"), map[string]any{
		"plaintext":       base64.StdEncoding.EncodeToString(dek),
		"associated_data": base64.StdEncoding.EncodeToString(aad),
	})
	if err != nil {
		return nil, 0, classify(err, "transit encrypt")
	}
	ct, _ := s.Data["ciphertext"].(string)
	v, err := Version([]byte(ct))
	if err != nil {
		return nil, 0, err
	}
	return []byte(ct), v, nil
}

// Unwrap implements keyring.KEK.
func (k *KEK) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if _, err := Version(wrapped); err != nil {
		return nil, err
	}
	s, err := k.c.Logical().WriteWithContext(ctx, k.path("decrypt"), map[string]any{
		"ciphertext":      string(wrapped),
		"associated_data": base64.StdEncoding.EncodeToString(aad),
	})
	if err != nil {
		return nil, classify(err, "transit decrypt")
	}
	pt, _ := s.Data["plaintext"].(string)
	dek, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "transit decrypt returned no data key")
	}
	return dek, nil
}

// Rewrap re-encrypts a wrapped data key under the key's newest version.
// Transit's rewrap endpoint ignores associated_data (tried with Vault
// v1.19.0: it answers that the ciphertext does not decrypt), so the data
// key is decrypted and encrypted again; it is in this process's memory for
// the call, as on every read.
func (k *KEK) Rewrap(ctx context.Context, wrapped, aad []byte) ([]byte, int, error) {
	dek, err := k.Unwrap(ctx, wrapped, aad)
	if err != nil {
		return nil, 0, err
	}
	defer clear(dek)
	return k.Wrap(ctx, dek, aad)
}

// Current implements keyring.KEK.
func (k *KEK) Current(ctx context.Context) (int, error) {
	ki, err := k.keyInfo(ctx)
	return ki.latest, err
}

// Rotate implements keyring.KEK.
func (k *KEK) Rotate(ctx context.Context) (int, error) {
	if _, err := k.c.Logical().WriteWithContext(ctx, k.path("keys")+"/rotate", nil); err != nil {
		return 0, classify(err, "rotate transit key")
	}
	return k.Current(ctx)
}

// Version returns the key version of a Transit ciphertext ("vault:vN:…").
func Version(ct []byte) (int, error) {
	s := string(ct)
	rest, ok := strings.CutPrefix(s, "vault:v")
	if !ok {
		return 0, apperr.E(apperr.Internal, "transit ciphertext is malformed")
	}
	n, _, ok := strings.Cut(rest, ":")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v < 1 || strconv.Itoa(v) != n {
		return 0, apperr.E(apperr.Internal, "transit ciphertext is malformed")
	}
	return v, nil
}

// classify turns Vault client errors into apperr kinds; Vault's messages
// never contain the data sent, so they are kept for logs.
func classify(err error, what string) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			return apperr.Wrap(err, apperr.Unavailable, what+": the Vault token is not allowed to do this")
		case re.StatusCode == http.StatusNotFound:
			return apperr.Wrap(err, apperr.NotFound, what+": not found on the Vault server")
		case re.StatusCode == http.StatusBadRequest:
			// Transit answers 400 when a ciphertext does not decrypt
			// (altered, other key, other associated data).
			return apperr.Wrap(err, apperr.Internal, what+" failed: the ciphertext does not decrypt with this key and context")
		}
		return apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("%s: Vault answered %d", what, re.StatusCode))
	}
	return apperr.Wrap(err, apperr.Unavailable, what+": Vault is unreachable")
}
