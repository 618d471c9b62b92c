package web

import (
	"encoding/json"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
)

// FuzzDecodeKeyName: the body of a registration's begin call is either
// one {"name": …} object, whose name round-trips, or refused as invalid.
func FuzzDecodeKeyName(f *testing.F) {
	for _, s := range []string{`{"name":"YubiKey"}`, `{}`, `{"name":1}`, `{"name":"a","x":1}`, `{"name":"a"} {}`, `null`, ``, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := decodeKeyName(b)
		if err != nil {
			if !apperr.Is(err, apperr.Invalid) {
				t.Fatalf("error of kind %s: %v", apperr.KindOf(err), err)
			}
			return
		}
		again, err := json.Marshal(map[string]string{"name": name})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeKeyName(again); err != nil || got != name {
			t.Fatalf("round trip of %q = %q, %v", name, got, err)
		}
	})
}
