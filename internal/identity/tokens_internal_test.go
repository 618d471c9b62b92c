package identity

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestNewTokenSecret_Format(t *testing.T) {
	s := &Service{rand: rand.Reader}
	seen := map[string]bool{}
	for range 100 {
		raw, err := s.newTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 50 || !strings.HasPrefix(raw, TokenPrefix) {
			t.Fatalf("token %q: want rpt_ and 46 characters", raw)
		}
		if strings.Trim(raw[4:], base62) != "" {
			t.Fatalf("token %q has characters outside base62", raw)
		}
		if !wellFormedToken(raw) {
			t.Fatalf("new token %q is not well formed", raw)
		}
		if seen[raw] {
			t.Fatalf("token %q generated twice", raw)
		}
		seen[raw] = true
	}
}

// FuzzWellFormedToken: the check accepts only rpt_ + 46 base62 characters
// whose last six are the checksum of the rest, so a token generated from
// any randomness passes and any one-character typo in it is caught.
func FuzzWellFormedToken(f *testing.F) {
	f.Add([]byte("0123456789"), "", uint8(0), byte('x'))
	f.Add(bytes.Repeat([]byte{0xff, 0x00, 0x7a}, 20), "rpt_", uint8(49), byte('0'))
	f.Add([]byte{}, "rpt_0000000000000000000000000000000000000000000000", uint8(10), byte('A'))
	f.Add([]byte("abc"), "rpt_ä000000000000000000000000000000000000000000000", uint8(4), byte('_'))
	f.Fuzz(func(t *testing.T, seed []byte, arbitrary string, pos uint8, c byte) {
		// Any string: accepted only with the right shape and checksum.
		if wellFormedToken(arbitrary) {
			if len(arbitrary) != 50 || !strings.HasPrefix(arbitrary, TokenPrefix) || strings.Trim(arbitrary[4:], base62) != "" {
				t.Fatalf("accepted %q", arbitrary)
			}
			if checksum62(arbitrary[:44]) != arbitrary[44:] {
				t.Fatalf("accepted %q with a wrong checksum", arbitrary)
			}
		}
		// A token generated from the seed's randomness.
		s := &Service{rand: newSeedReader(seed)}
		raw, err := s.newTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !wellFormedToken(raw) {
			t.Fatalf("generated token %q is not well formed", raw)
		}
		i := int(pos) % len(raw)
		if raw[i] == c {
			return
		}
		typo := raw[:i] + string(c) + raw[i+1:]
		if wellFormedToken(typo) {
			t.Fatalf("typo %q of %q accepted", typo, raw)
		}
	})
}

// newSeedReader returns the seed's bytes followed by real randomness, so
// the generator never runs dry.
func newSeedReader(seed []byte) *seedReader { return &seedReader{seed: seed} }

type seedReader struct{ seed []byte }

func (r *seedReader) Read(p []byte) (int, error) {
	if len(r.seed) > 0 {
		n := copy(p, r.seed)
		r.seed = r.seed[n:]
		return n, nil
	}
	return rand.Read(p)
}
