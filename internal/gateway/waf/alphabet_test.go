package waf

import (
	"regexp"
	"strings"
	"testing"
)

func TestAlphabetOf(t *testing.T) {
	set, ok := alphabetOf("item 7")
	if !ok {
		t.Fatal("ASCII input reported non-ASCII")
	}
	for _, c := range "item 0123456789" {
		if set[c>>6]&(1<<(c&63)) == 0 {
			t.Errorf("set of %q lacks %q", "item 7", c)
		}
	}
	if set[0]&(1<<'.') != 0 || set[1]&(1<<('a'-64)) != 0 {
		t.Errorf("set of %q has bytes it should not", "item 7")
	}
	if _, ok := alphabetOf("sélect"); ok {
		t.Error("non-ASCII input reported ASCII")
	}
}

// TestAlphabetMayMatch checks the filter on inputs it must let through
// (they match) and on inputs it can reject.
func TestAlphabetMayMatch(t *testing.T) {
	tests := []struct {
		pattern, input string
		want           bool
	}{
		{`(?i)union\s+select`, "1 UNION SELECT 2", true},
		{`(?i)union\s+select`, "item 24", false},
		{`(?i)union\s+select`, "union select", true},
		{`(?i)union\s+select`, "uniOnselect", false},   // no white space
		{`(?i)union\s+select`, "noinu\ttcelesx", true}, // every byte needed, in another order: the filter does not see order
		{`[<>]`, "a<b", true},                          // a class needing one byte
		{`[<>]`, "alpha", false},                       // neither byte
		{`(?i)\x{212A}elvin`, "kelvin", true},          // the Kelvin sign folds to k
		{`(?i)\x{212A}`, "K", true},                    // and to K
		{`\bor\b`, "or", true},                         // assertions pass
		{`^$`, "x", false},                             // matches the empty string: no filter (nil)
		{`a*`, "x", false},                             // likewise
		{`\d{3}`, "item 7", true},                      // digits widen: one digit stands for all of them
		{`99`, "item 1", true},                         // likewise
		{`[^a-z]`, "abc", false},                       // a negated class
		{`[^a-z]`, "ab.", true},                        //
		{`(?s).\n`, "\n\n", true},                      // with s it does
		{`(?-s).\n`, "\n\n", false},                    // without s dot does not match a newline
		{`(?m)^a$`, "\na\n", true},                     //
		{`(?:foo|bar)baz`, "bazbar", true},             // order again
		{`(?:foo|bar)baz`, "fbaz", false},              // neither foo (no o) nor bar (no r)
		{`x{0}y`, "y", true},                           //
		{`(?i)<script`, "<SCRIPT", true},               //
		{`(?i)<script`, "script", false},               // no <
		{`[\x00-\x08]`, "a\x01", true},                 // control bytes
		{`\x7f`, "\x7f", true},                         // the last ASCII byte
	}
	for _, tt := range tests {
		re := regexp.MustCompile("(?sm)" + tt.pattern)
		a := newAlphabet(re.String())
		set, ok := alphabetOf(tt.input)
		if !ok {
			t.Fatalf("%q: not ASCII", tt.input)
		}
		got := a == nil || a.mayMatch(set)
		if re.MatchString(tt.input) && !got {
			t.Errorf("alphabet of %q rejects %q, which matches", tt.pattern, tt.input)
		}
		if a != nil && got != tt.want {
			t.Errorf("alphabet of %q on %q = %v, want %v", tt.pattern, tt.input, got, tt.want)
		}
		if a == nil && tt.want {
			continue
		}
		if a == nil && !re.MatchString("") {
			t.Errorf("%q: no alphabet filter, yet it does not match the empty string", tt.pattern)
		}
		// Asking again answers from the table, the same.
		if a != nil && a.mayMatch(set) != got {
			t.Errorf("alphabet of %q on %q: second answer differs", tt.pattern, tt.input)
		}
	}
}

// TestAlphabetTableFull fills an alphabet filter's table with other sets:
// inputs whose sets find no slot pass.
func TestAlphabetTableFull(t *testing.T) {
	a := newAlphabet(`(?sm)(?i)union\s+select`)
	for c := byte(1); c < 0x80; c++ {
		for d := byte(1); d < 0x80; d++ {
			a.mayMatch(byteSet{}.with(c).with(d))
		}
	}
	set, _ := alphabetOf("1 union select 2")
	if !a.mayMatch(set) {
		t.Fatal("a full table rejects a match")
	}
	set, _ = alphabetOf("hello")
	full := 0
	for i := range alphabetSlots {
		if a.slots[i].Load() != nil {
			full++
		}
	}
	if full != alphabetSlots {
		t.Errorf("%d of %d slots taken, want all", full, alphabetSlots)
	}
	_ = a.mayMatch(set) // either answer is sound for a non-match; it must not panic
}

func (b byteSet) with(c byte) byteSet {
	b[c>>6] |= 1 << (c & 63)
	return b
}

// FuzzAlphabet checks the alphabet filter of random patterns against Go's
// regexp on random inputs: it must never reject an input the pattern
// matches.
func FuzzAlphabet(f *testing.F) {
	seeds := [][2]string{
		{`union\s+select`, "1 UNION  select"},
		{`(?i)(?:foo|ba)r`, "BAR"},
		{`[Ss]el+ect`, "sellllect"},
		{`(?:^|b)cd`, "cd"},
		{`(?i)\x{212A}elvin`, "Kelvin"},
		{`\d+\.\d+`, "item 3.5"},
		{`(?:x{2,3}|yz)\b`, "xxx"},
		{`[^a-z]+`, "ABC"},
		{`(?m)^ab$`, "x\nab\n"},
		{`\x00`, "a\x00"},
		{`[^\n]`, "\n"},
	}
	fuzzPatterns(f, seeds, func(t *testing.T, pattern string, re *regexp.Regexp, input string) {
		a := newAlphabet("(?sm)" + pattern)
		for _, in := range []string{input, strings.ToLower(input)} {
			set, ascii := alphabetOf(in)
			if a == nil || !ascii || a.mayMatch(set) {
				continue
			}
			if re.MatchString(in) {
				t.Fatalf("alphabet filter of %q rejects %q, which matches", pattern, in)
			}
		}
	})
}
