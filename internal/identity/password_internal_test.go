package identity

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/rampartsec/rampart/internal/apperr"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPassword_Argon2idPHC(t *testing.T) {
	h1, err := hashPassword(rand.Reader, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h1) {
		t.Fatalf("hash %q is not argon2id PHC with the current parameters", h1)
	}
	if strings.Contains(h1, "correct horse") {
		t.Fatal("hash contains the password")
	}
	h2, err := hashPassword(rand.Reader, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, h := range []string{h1, h2} {
		if ok, rehash := checkPassword(h, "correct horse battery"); !ok || rehash {
			t.Errorf("checkPassword(right) = %v, %v; want true, false", ok, rehash)
		}
	}
	for _, wrong := range []string{"", "correct horse batter", "correct horse battery ", "Correct horse battery"} {
		if ok, _ := checkPassword(h1, wrong); ok {
			t.Errorf("checkPassword(%q) = true", wrong)
		}
	}
}

// phc encodes an argon2id hash with the given parameters.
func phc(password string, salt []byte, p argonParams, keyLen uint32) string {
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.memory, p.time, p.threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestCheckPassword_OldParametersAskForRehash(t *testing.T) {
	old := phc("correct horse battery", []byte("0123456789abcdef"), argonParams{time: 1, memory: 8 * 1024, threads: 1}, 32)
	ok, rehash := checkPassword(old, "correct horse battery")
	if !ok || !rehash {
		t.Fatalf("checkPassword(old params) = %v, %v; want true, true", ok, rehash)
	}
	if ok, rehash := checkPassword(old, "wrong password!"); ok || rehash {
		t.Fatalf("wrong password on an old hash = %v, %v; want false, false", ok, rehash)
	}
}

func TestCheckPassword_RefusesMalformedHashes(t *testing.T) {
	good, err := hashPassword(rand.Reader, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := map[string]string{
		"empty":            "",
		"bcrypt":           "$2a$10$abcdefghijklmnopqrstuu5Qf7F5lQ3l5l5l5l5l5l5l5l5l5l5l5l",
		"argon2i":          with(1, "argon2i"),
		"version 16":       with(2, "v=16"),
		"no parameters":    with(3, ""),
		"zero memory":      with(3, "m=0,t=2,p=1"),
		"huge memory":      with(3, "m=4194304,t=2,p=1"),
		"zero time":        with(3, "m=19456,t=0,p=1"),
		"huge time":        with(3, "m=19456,t=100,p=1"),
		"zero threads":     with(3, "m=19456,t=2,p=0"),
		"bad salt":         with(4, "!!!"),
		"short key":        with(5, "AAAA"),
		"bad key":          with(5, "***"),
		"extra field":      good + "$x",
		"missing field":    strings.Join(parts[:5], "$"),
		"trailing junk":    with(3, "m=19456,t=2,p=1junk"),
		"reordered params": with(3, "t=2,m=19456,p=1"),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := parsePHC(h); err == nil {
				t.Errorf("parsePHC(%q) accepted it", h)
			}
			if ok, rehash := checkPassword(h, "correct horse battery"); ok || rehash {
				t.Errorf("checkPassword = %v, %v", ok, rehash)
			}
		})
	}
}

// The hash checked for unknown users must be a real one, or an unknown user
// name would answer faster than a wrong password.
func TestDummyHashIsReal(t *testing.T) {
	p, salt, key, err := parsePHC(dummyHash)
	if err != nil {
		t.Fatalf("dummyHash does not parse: %v", err)
	}
	if p != currentArgon || len(salt) != argonSaltLen || len(key) != argonKeyLen {
		t.Fatalf("dummyHash has params %+v, %d-byte salt, %d-byte key; want the current ones", p, len(salt), len(key))
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name, user, pw string
		wantErr        string
	}{
		{"ten characters", "bob", "abcdefghij", ""},
		{"ten runes of two bytes", "bob", strings.Repeat("é", 10), ""},
		{"256 bytes", "bob", strings.Repeat("x", 256), ""},
		{"spaces count", "bob", "a b c d e f", ""},
		{"nine characters", "bob", "abcdefghi", "at least 10 characters"},
		{"nine runes of four bytes", "bob", strings.Repeat("😀", 9), "at least 10 characters"},
		{"257 bytes", "bob", strings.Repeat("x", 257), "at most 256 bytes"},
		{"common", "bob", "password123", "too common"},
		{"common in other case", "bob", "PassWord123", "too common"},
		{"the user name", "administrator1", "administrator1", "must not be the user name"},
		{"the user name in other case", "longusername", "LongUserName", "must not be the user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validatePassword(tt.user, tt.pw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validatePassword = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validatePassword = %v, want %q", err, tt.wantErr)
			}
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "password" {
				t.Errorf("kind %v field %q", apperr.KindOf(err), apperr.FieldOf(err))
			}
			if strings.Contains(err.Error(), tt.pw) {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

// FuzzParsePHC: whatever a stored hash holds, parsing never panics, and
// what it accepts is within the bounds checkPassword can afford and is
// the canonical encoding of what it parsed (so one hash has one text).
func FuzzParsePHC(f *testing.F) {
	good, err := hashPassword(rand.Reader, "seed password")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, dummyHash, "", "$argon2id$", "$argon2id$v=19$m=1,t=1,p=1$$",
		"$argon2id$v=19$m=19456,t=2,p=1junk$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=19456,t=2,p=256$c29tZXNhbHQ$" + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.memory == 0 || p.memory > 1<<21 || p.time == 0 || p.time > 16 || p.threads == 0 {
			t.Fatalf("parsePHC(%q) accepted parameters %+v", s, p)
		}
		if len(key) < 16 || len(key) > 64 {
			t.Fatalf("parsePHC(%q) accepted a %d-byte key", s, len(key))
		}
		if len(salt) < 8 {
			t.Fatalf("parsePHC(%q) accepted a %d-byte salt", s, len(salt))
		}
		b64 := base64.RawStdEncoding
		canon := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.memory, p.time, p.threads,
			b64.EncodeToString(salt), b64.EncodeToString(key))
		if canon != s {
			t.Fatalf("parsePHC accepted %q, which is not the canonical %q", s, canon)
		}
	})
}
