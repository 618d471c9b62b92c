package boards_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/boards"
)

func TestParseRefs(t *testing.T) {
	type ref = boards.Ref
	tests := []struct {
		name string
		text string
		want []ref
	}{
		{"plain mention", "Add login page AB#12", []ref{{12, false}}},
		{"any case", "see ab#3 and Ab#4", []ref{{3, false}, {4, false}}},
		{"in punctuation", "(AB#7), [AB#8]. AB#9!", []ref{{7, false}, {8, false}, {9, false}}},
		{"fixes", "Fixes AB#12", []ref{{12, true}}},
		{"every closing keyword", "fix AB#1 fixed AB#2 close AB#3 closes AB#4 closed AB#5 resolve AB#6 resolves AB#7 RESOLVED AB#8",
			[]ref{{1, true}, {2, true}, {3, true}, {4, true}, {5, true}, {6, true}, {7, true}, {8, true}}},
		{"colon after keyword", "Closes: AB#5", []ref{{5, true}}},
		{"keyword glued to colon", "fixes:AB#5", []ref{{5, true}}},
		{"list after keyword", "Fixes AB#1, AB#2 and AB#3 & AB#4", []ref{{1, true}, {2, true}, {3, true}, {4, true}}},
		{"list ends at other words", "Fixes AB#1, see AB#2", []ref{{1, true}, {2, false}}},
		{"keyword on the line before", "Fixes\nAB#1", []ref{{1, true}}},
		{"not a keyword", "prefixes AB#1, suffix AB#2", []ref{{1, false}, {2, false}}},
		{"keyword then other words", "fixes the bug in AB#1", []ref{{1, false}}},
		{"duplicates once, fixes wins", "AB#5 then fixes AB#5 and AB#5", []ref{{5, true}}},
		{"glued to a word before", "XAB#1 AB_AB#2 9AB#3", nil},
		{"glued to a word after", "AB#1x AB#2_ AB#3é", nil},
		{"glued to non-ASCII before", "éAB#1", nil},
		{"zero", "AB#0 AB#000", nil},
		{"leading zeros", "AB#007", []ref{{7, false}}},
		{"no digits", "AB# AB#x AB", nil},
		{"ten digits", "AB#1234567890", nil},
		{"nine digits", "AB#123456789", []ref{{123456789, false}}},
		{"hash only", "#12 and GH-12", nil},
		{"two hashes", "AB##12", nil},
		{"number then hash", "AB#12#3", []ref{{12, false}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boards.ParseRefs(tt.text)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRefs(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
}

func TestParseRefs_Limits(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 3*boards.MaxRefs; i++ {
		b.WriteString("AB#" + strconv.Itoa(i) + " ")
	}
	got := boards.ParseRefs(b.String())
	if len(got) != boards.MaxRefs || got[0].Number != 1 || got[len(got)-1].Number != boards.MaxRefs {
		t.Errorf("ParseRefs of %d mentions returned %d (first %v), want the first %d", 3*boards.MaxRefs, len(got), got[:1], boards.MaxRefs)
	}
	far := strings.Repeat("x ", boards.MaxRefText) + "AB#1"
	if got := boards.ParseRefs(far); len(got) != 0 {
		t.Errorf("a mention past %d bytes was read: %v", boards.MaxRefText, got)
	}
}

func TestParseNumber(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12", 12, true},
		{"AB#12", 12, true},
		{"ab#3", 3, true},
		{" 7 ", 7, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"AB#", 0, false},
		{"1234567890", 0, false},
		{"12x", 0, false},
		{"../1", 0, false},
	} {
		got, err := boards.ParseNumber(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseRefs checks, for any text, that the parser does not panic, and
// that every reference it returns is a standalone AB#N in the text,
// returned once, within the limits.
func FuzzParseRefs(f *testing.F) {
	for _, s := range []string{"Fixes AB#12", "ab#1, AB#2 and AB#3", "XAB#1", "AB#1x", "closes:\tAB#9", "é AB#5", "AB#0", "fixes AB#1 & ab#2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		refs := boards.ParseRefs(text)
		if len(refs) > boards.MaxRefs {
			t.Fatalf("%d refs, over %d", len(refs), boards.MaxRefs)
		}
		if len(text) > boards.MaxRefText {
			text = text[:boards.MaxRefText]
		}
		lower := []byte(text)
		for i, c := range lower {
			if c >= 'A' && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		seen := map[int64]bool{}
		for _, r := range refs {
			if r.Number <= 0 || r.Number > 999999999 {
				t.Fatalf("ref %d out of range", r.Number)
			}
			if seen[r.Number] {
				t.Fatalf("ref %d returned twice", r.Number)
			}
			seen[r.Number] = true
			standalone := regexp.MustCompile(`(^|[^a-z0-9_\x80-\xff])ab#0*` + strconv.FormatInt(r.Number, 10) + `([^a-z0-9_\x80-\xff]|$)`)
			if !standalone.Match(lower) {
				t.Fatalf("ref %d is not a standalone AB#%d in %q", r.Number, r.Number, text)
			}
		}
		// Parsing is deterministic.
		if diff := cmp.Diff(refs, boards.ParseRefs(text)); diff != "" {
			t.Fatalf("second parse differs:\n%s", diff)
		}
	})
}
