package vault

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The parsers of untrusted input in this package, fuzzed. Their seeds run
// as ordinary tests; `go test -fuzz=FuzzX` explores further.

// FuzzParseRef: a reference either fails with a clear error or parses
// into parts that print back as the same text.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"acme/DB", "acme/web/DB", "acme/web/prod/DB_PASSWORD", "acme//DB", "acme/web/prod/x/DB",
		"/DB", "acme/", "ACME/DB", "acme/web/prod/.hidden", "acme/web/Prod/DB", strings.Repeat("a/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if msg := err.Error(); len(msg) > 400 {
				t.Fatalf("error of %d bytes", len(msg))
			}
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRef(%q) prints as %q", s, r.String())
		}
		if r2, err := ParseRef(r.String()); err != nil || r2 != r {
			t.Fatalf("round trip of %q: %+v, %v", s, r2, err)
		}
		if sc, err := ParseScope(r.Scope.String()); err != nil || sc != r.Scope {
			t.Fatalf("scope of %q: %+v, %v", s, sc, err)
		}
	})
}

// FuzzParseSubject: a policy subject either fails or prints back as
// itself.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"user:alice", "team:ops", "pipeline:web:main:prod", "pipeline:web:release/*:*",
		"deployment:web:prod", "deployment:web:pr*", "user:", "team:a:b", "pipeline:web:main", "deployment:WEB:prod",
		"pipeline:web:[:prod", "robot:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := ParseSubject(s)
		if err != nil {
			return
		}
		if sub.String() != s {
			t.Fatalf("ParseSubject(%q) prints as %q", s, sub.String())
		}
	})
}

// FuzzGlobAny: the branch matcher ends on any input (no runaway
// backtracking), a pattern without wildcards matches only itself, and
// "*" matches everything.
func FuzzGlobAny(f *testing.F) {
	for _, s := range [][2]string{{"release/*", "release/1.2"}, {"*", "main"}, {"m?in", "main"}, {"*a*a*a*a*b", strings.Repeat("a", 200)},
		{"feature/*/fix", "feature/x/y/fix"}, {"", ""}, {"main", "main2"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 200 || len(s) > 200 {
			return
		}
		got := globAny(pattern, s)
		if !strings.ContainsAny(pattern, "*?") && got != (pattern == s) {
			t.Fatalf("globAny(%q, %q) = %v", pattern, s, got)
		}
		if !globAny("*", s) || !globAny(pattern, pattern) && !strings.ContainsAny(pattern, "?") {
			t.Fatalf("wildcards: %q %q", pattern, s)
		}
	})
}

// FuzzInjections: an injection spec is refused, or names only relative
// file paths inside the target directory and valid variable names.
func FuzzInjections(f *testing.F) {
	for _, s := range [][2]string{{"DB_PASSWORD", ""}, {"", "db/password"}, {"", "../etc/passwd"}, {"", "/abs"},
		{"1BAD", ""}, {"A", "b"}, {"", "a/./b"}, {"", "a\\b"}, {"", "."}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, env, file string) {
		err := validateInjections([]Injection{{Ref: "acme/web/prod/DB", Env: env, File: file}})
		if err != nil {
			return
		}
		if file != "" && (strings.HasPrefix(file, "/") || strings.Contains("/"+file+"/", "/../") || strings.ContainsRune(file, 0)) {
			t.Fatalf("accepted file %q", file)
		}
		if env != "" && (strings.ContainsAny(env, "=\x00 ") || env[0] >= '0' && env[0] <= '9') {
			t.Fatalf("accepted variable %q", env)
		}
	})
}

// FuzzMasker: whatever the values and however the output is split into
// writes, no value of 3 bytes or more (without '*', which the
// replacement itself is made of) survives in what the writer passes on,
// and text without values passes unchanged.
func FuzzMasker(f *testing.F) {
	f.Add("s3cret-value", "line 1 s3cret-value and s3cret-val", uint8(3))
	f.Add("multi\nline\nvalue", "multi line value\nmulti\nx", uint8(1))
	f.Add("aba", "abababa", uint8(2))
	f.Add("ab", "abab", uint8(1))
	f.Fuzz(func(t *testing.T, value, text string, split uint8) {
		if len(value) > 300 || len(text) > 3000 {
			return
		}
		m := NewMasker(NewValue([]byte(value)))
		var out bytes.Buffer
		w := m.Writer(&out)
		step := int(split%16) + 1
		for i := 0; i < len(text); i += step {
			if _, err := w.Write([]byte(text[i:min(len(text), i+step)])); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, tok := range m.tokens {
			if !bytes.ContainsRune(tok, '*') && bytes.Contains(out.Bytes(), tok) {
				t.Fatalf("value part %q survives in %q", tok, out.String())
			}
		}
		if len(m.tokens) == 0 && out.String() != text {
			t.Fatalf("text changed without values: %q -> %q", text, out.String())
		}
		if !bytes.Equal(out.Bytes(), m.Mask([]byte(text))) {
			t.Fatalf("split writes and Mask differ: %q vs %q", out.String(), m.Mask([]byte(text)))
		}
	})
}

// FuzzParseGenerator: a generator spec is refused or generates a value of
// its length from its alphabet.
func FuzzParseGenerator(f *testing.F) {
	for _, s := range []string{"random:32", "random:16:hex", "random:256:base64url", "random:15", "random:257", "random:32:emoji", "random", "random:-1", "x:32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGenerator(s)
		if err != nil {
			return
		}
		v, err := g.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if v.Len() != g.Length || strings.Trim(string(v.Reveal()), alphabets[g.Alphabet]) != "" {
			t.Fatalf("%q generated %d bytes outside its alphabet", s, v.Len())
		}
	})
}

// FuzzParseDurationSecond: delete_version_after from a metadata write
// either fails or is whole seconds from 0 to the limit, and reads back
// (as Go prints it, which the metadata read returns) as itself.
func FuzzParseDurationSecond(f *testing.F) {
	for _, s := range []string{`"3h"`, `"30m"`, `"1h30m"`, `5400`, `"90"`, `"2d"`, `"1.5s"`, `""`, `0`, `-5`, `"-1h"`, `1.5`, `true`,
		`"99999999999999999h"`, `"99999999d"`, `99999999999`, `"9223372036854775807"`, `{}`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDurationSecond(json.RawMessage(s))
		if err != nil {
			if msg := err.Error(); len(msg) > 200 || strings.Contains(msg, s) && len(s) > 8 {
				t.Fatalf("error %q", msg)
			}
			return
		}
		if d < 0 || d > maxDeleteVersionAfter || d%time.Second != 0 {
			t.Fatalf("parseDurationSecond(%s) = %v", s, d)
		}
		back, err := parseDurationSecond(json.RawMessage(strconv.Quote(d.String())))
		if err != nil || back != d {
			t.Fatalf("%v reads back as %v, %v", d, back, err)
		}
	})
}
