package transitkms_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/vault/transitkms"
	"github.com/rampartsec/rampart/internal/vault/transitkms/transittest"
)

func newKEK(t *testing.T, s *transittest.Server, key string) *transitkms.KEK {
	t.Helper()
	k, err := transitkms.New(context.Background(), transitkms.Config{Address: s.Addr, Token: transittest.RootToken, Key: key, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTransit_WrapRotateRewrap(t *testing.T) {
	s := transittest.StartVault(t)
	ctx := context.Background()
	k := newKEK(t, s, "rampart")
	dek := bytes.Repeat([]byte{7}, 32)
	aad := []byte("rampart/vault/secret/abc/version/1")
	w1, v1, err := k.Wrap(ctx, dek, aad)
	if err != nil || v1 != 1 || !strings.HasPrefix(string(w1), "vault:v1:") {
		t.Fatalf("wrap = %q %d %v", w1, v1, err)
	}
	if got, err := k.Unwrap(ctx, w1, aad); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap = %x %v", got, err)
	}
	// The associated data binds the wrapped key to its secret and version.
	if _, err := k.Unwrap(ctx, w1, []byte("rampart/vault/secret/abc/version/2")); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("unwrap with another context: %v", err)
	}
	tampered := []byte(strings.Replace(string(w1), "vault:v1:", "vault:v1:AAAA", 1))
	if _, err := k.Unwrap(ctx, tampered, aad); err == nil {
		t.Fatal("tampered ciphertext unwrapped")
	}
	if _, err := k.Unwrap(ctx, []byte("not-transit"), aad); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed ciphertext: %v", err)
	}

	v2, err := k.Rotate(ctx)
	if err != nil || v2 != 2 {
		t.Fatalf("rotate = %d %v", v2, err)
	}
	if cur, _ := k.Current(ctx); cur != 2 {
		t.Fatalf("current = %d", cur)
	}
	w2, v, err := k.Rewrap(ctx, w1, aad)
	if err != nil || v != 2 || !strings.HasPrefix(string(w2), "vault:v2:") {
		t.Fatalf("rewrap = %q %d %v", w2, v, err)
	}
	for _, w := range [][]byte{w1, w2} {
		if got, err := k.Unwrap(ctx, w, aad); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("unwrap %q after rotation = %x %v", w[:10], got, err)
		}
	}
	if v, err := transitkms.Version(w2); err != nil || v != 2 {
		t.Fatalf("Version = %d %v", v, err)
	}
}

func TestTransit_RefusesWhatItCannotUse(t *testing.T) {
	s := transittest.StartVault(t)
	ctx := context.Background()
	root := s.Client(t)
	if _, err := root.Logical().Write("transit/keys/signer", map[string]any{"type": "ecdsa-p256"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  transitkms.Config
		kind apperr.Kind
		want string
	}{
		{"missing key", transitkms.Config{Address: s.Addr, Token: transittest.RootToken, Key: "absent"}, apperr.NotFound, "does not exist"},
		{"not an AEAD key", transitkms.Config{Address: s.Addr, Token: transittest.RootToken, Key: "signer"}, apperr.Invalid, "AEAD key"},
		{"bad token", transitkms.Config{Address: s.Addr, Token: "wrong", Key: "rampart", Create: true}, apperr.Unavailable, "not allowed"},
		{"no server", transitkms.Config{Address: "http://127.0.0.1:1", Token: transittest.RootToken, Timeout: time.Second}, apperr.Unavailable, "unreachable"},
		{"bad key name", transitkms.Config{Address: s.Addr, Token: transittest.RootToken, Key: "../sys"}, apperr.Invalid, "names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transitkms.New(ctx, tt.cfg)
			if apperr.KindOf(err) != tt.kind || !strings.Contains(apperr.Message(err), tt.want) {
				t.Fatalf("New = %v (%v), want %v saying %q", err, apperr.KindOf(err), tt.kind, tt.want)
			}
		})
	}
	// A server that goes away fails wraps and unwraps; nothing falls back.
	k := newKEK(t, s, "rampart")
	w, _, err := k.Wrap(ctx, make([]byte, 32), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if _, err := k.Unwrap(ctx, w, []byte("a")); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("unwrap with the server down: %v", err)
	}
	if _, _, err := k.Wrap(ctx, make([]byte, 32), []byte("a")); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("wrap with the server down: %v", err)
	}
}
