package waf

import (
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/gateway/waf/ftw"
	"github.com/rampartsec/rampart/internal/testenv"
)

func TestPrefilterLiterals(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string // nil: no prefilter
	}{
		{`union\s+select`, []string{"select"}},
		{`(?i)UNION`, []string{"union"}},
		{`foo|bar`, []string{"foo", "bar"}},
		{`(?:foo|ba)r`, []string{"foor", "bar"}},
		{`[Ss]elect`, []string{"select"}},
		{`colou?r`, []string{"colour", "color"}},
		{`a*`, nil},
		{`.*`, nil},
		{`^$`, nil},
		{`x+yz`, []string{"yz"}},
		{`(?:ab){2,}`, []string{"ab"}},
		{`(?:^|b)cd`, []string{"cd", "bcd"}},
		{`(?:abc|.)`, nil},
		{`é`, []string{}},                         // no ASCII input matches
		{`(?i)\x{212A}elvin`, []string{"kelvin"}}, // the Kelvin sign folds to k
		{`[^a]bcd`, []string{"bcd"}},
		{`a|b|c|d|e`, nil}, // five one-character literals: not worth it
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p := newPrefilter("(?sm)" + tt.pattern)
			var got []string
			if p != nil {
				got = p.lits
				if got == nil {
					got = []string{}
				}
			}
			if tt.want == nil && got != nil || tt.want != nil && !slices.Equal(sortedCopy(got), sortedCopy(tt.want)) {
				t.Errorf("literals of %q = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	if s == nil {
		return nil
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestPrefilterMayMatch(t *testing.T) {
	tests := []struct {
		pattern, input string
		want           bool
	}{
		{`(?i)union\s+select`, "1 UNION SELECT 2", true},
		{`(?i)union\s+select`, "hello", false},
		{`select`, "SeLeCt", true},          // case-insensitive: a necessary condition only
		{`select`, "sélect", true},          // non-ASCII input: always run the expression
		{`(?i)kelvin`, "\u212Aelvin", true}, // which it then matches
		{`foo|bar`, "xbarx", true},
		{`foo|bar`, "fo ba", false},
		{`é`, "e", false},
		{`é`, "é", true},
		{`abc`, strings.Repeat("x", 600) + "ABC", true}, // longer than the stack buffer
		{`abc`, strings.Repeat("X", 600), false},
	}
	for _, tt := range tests {
		p := newPrefilter("(?sm)" + tt.pattern)
		if p == nil {
			t.Fatalf("%q: no prefilter", tt.pattern)
		}
		if got := p.mayMatch(tt.input); got != tt.want {
			t.Errorf("%q on %q: mayMatch = %v, want %v", tt.pattern, tt.input, got, tt.want)
		}
		if !p.mayMatch(tt.input) && regexp.MustCompile("(?sm)"+tt.pattern).MatchString(tt.input) {
			t.Errorf("%q on %q: rejected an input the expression matches", tt.pattern, tt.input)
		}
	}
}

// crsPatterns returns the @rx arguments of the CRS rules compiled in.
func crsPatterns(t testing.TB) []string {
	t.Helper()
	rx := regexp.MustCompile(`"@rx ((?:[^"\\]|\\.)*)"`)
	var out []string
	err := fs.WalkDir(coreruleset.FS, "@owasp_crs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".conf") {
			return err
		}
		b, err := fs.ReadFile(coreruleset.FS, p)
		if err != nil {
			return err
		}
		for _, m := range rx.FindAllStringSubmatch(string(b), -1) {
			arg := strings.ReplaceAll(m[1], `\"`, `"`)
			if _, err := regexp.Compile(arg); err == nil && !slices.Contains(out, arg) {
				out = append(out, arg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 200 {
		t.Fatalf("found %d @rx patterns in the CRS, want hundreds", len(out))
	}
	return out
}

// crsPayloads returns the request lines, header values and bodies of the
// CRS regression tests, as sent and URL-decoded.
func crsPayloads(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(testenv.GoModule(t, "github.com/corazawaf/coraza-coreruleset/v4", "v"+CRSVersion), "tests")
	var out []string
	add := func(s string) {
		if s == "" || len(s) > 4096 {
			return
		}
		out = append(out, s)
		if u, err := url.QueryUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
	}
	files, err := ftw.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for _, tt := range f.Tests {
			for _, st := range tt.Stages {
				add(st.Input.URI)
				add(string(st.Input.Data))
				for _, h := range st.Input.Headers {
					add(h.Value)
				}
			}
		}
	}
	return out
}

// TestRxOnCRS runs every @rx pattern of the CRS on the payloads of the CRS
// regression tests (a sample of them, to stay fast) through Rampart's
// operator and through Go's regexp: the prefilter never rejects a match,
// and RE2, where the operator uses it, finds the same matches and
// submatches.
func TestRxOnCRS(t *testing.T) {
	patterns := crsPatterns(t)
	payloads := crsPayloads(t)
	step := 1
	if testing.Short() || len(payloads) > 250 {
		step = max(1, len(payloads)/250)
	}
	withRE2, withPre, withAlpha := 0, 0, 0
	for _, p := range patterns {
		op, err := newRx(optionsFor(p))
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		o, ok := op.(*rx)
		if !ok {
			continue
		}
		if o.re2 != nil {
			withRE2++
		}
		if o.pre != nil {
			withPre++
		}
		if o.alpha != nil {
			withAlpha++
		}
		std := regexp.MustCompile("(?sm)" + p)
		for i := 0; i < len(payloads); i += step {
			in := payloads[i]
			checkRx(t, p, std, o, in)
			checkRx(t, p, std, o, strings.ToLower(in))
		}
	}
	t.Logf("%d patterns: %d with a prefilter, %d with an alphabet filter, %d on RE2; %d payloads",
		len(patterns), withPre, withAlpha, withRE2, len(payloads)/step)
	if withPre < len(patterns)/2 {
		t.Errorf("only %d of %d CRS patterns have a prefilter", withPre, len(patterns))
	}
	if withAlpha < len(patterns)*9/10 {
		t.Errorf("only %d of %d CRS patterns have an alphabet filter", withAlpha, len(patterns))
	}
}

func optionsFor(pattern string) plugintypes.OperatorOptions {
	return plugintypes.OperatorOptions{Arguments: pattern}
}

// captureTx is the part of a transaction the @rx operator uses.
type captureTx struct {
	plugintypes.TransactionState
	capturing bool
	fields    []string
}

func (c *captureTx) Capturing() bool { return c.capturing }

func (c *captureTx) CaptureField(i int, v string) {
	for len(c.fields) <= i {
		c.fields = append(c.fields, "")
	}
	c.fields[i] = v
}

// checkRx compares the operator with Go's regexp on one input.
func checkRx(t *testing.T, pattern string, std *regexp.Regexp, o *rx, in string) {
	t.Helper()
	want := std.FindStringSubmatchIndex(in)
	if o.pre != nil && !o.pre.mayMatch(in) && want != nil {
		t.Errorf("prefilter of %q rejects %q, which matches", pattern, in)
	}
	if set, ascii := alphabetOf(in); o.alpha != nil && ascii && !o.alpha.mayMatch(set) && want != nil {
		t.Errorf("alphabet filter of %q rejects %q, which matches", pattern, in)
	}
	tx := &captureTx{capturing: true}
	got := o.Evaluate(tx, in)
	if got != (want != nil) {
		t.Errorf("%q on %q: operator says %v, regexp %v", pattern, in, got, want != nil)
		return
	}
	if got {
		var wantCaps []string
		for i := 0; i < len(want)/2 && i < 9; i++ {
			c := ""
			if want[2*i] >= 0 {
				c = in[want[2*i]:want[2*i+1]]
			}
			wantCaps = append(wantCaps, c)
		}
		if diff := cmp.Diff(wantCaps, tx.fields); diff != "" {
			t.Errorf("%q on %q: captures differ (-regexp +operator):\n%s", pattern, in, diff)
		}
	}
	if o.re2 != nil && utf8.ValidString(in) {
		if r2 := o.re2.MatchString(in); r2 != (want != nil) {
			t.Errorf("%q on %q: RE2 says %v, regexp %v", pattern, in, r2, want != nil)
		}
	}
}

// FuzzPrefilter checks the prefilter of random patterns against Go's
// regexp on random inputs: it must never reject an input the pattern
// matches.
func FuzzPrefilter(f *testing.F) {
	seeds := [][2]string{
		{`union\s+select`, "1 UNION  select"},
		{`(?i)(?:foo|ba)r`, "BAR"},
		{`[Ss]el+ect`, "sellllect"},
		{`(?:^|b)cd`, "cd"},
		{`(?i)\x{212A}elvin`, "Kelvin"},
		{`é`, "é"},
		{`a(?:bc)?d`, "ad"},
		{`(?:x{2,3}|yz)\b`, "xxx"},
		{`[^a-z]+`, "ABC"},
		{`(?m)^ab$`, "x\nAB\n"},
	}
	fuzzPatterns(f, seeds, func(t *testing.T, pattern string, re *regexp.Regexp, input string) {
		p := newPrefilter("(?sm)" + pattern)
		if p == nil || p.mayMatch(input) {
			return
		}
		if re.MatchString(input) {
			t.Fatalf("prefilter %q of %q rejects %q, which matches", p.lits, pattern, input)
		}
		if re.MatchString(strings.ToLower(input)) && p.mayMatch(strings.ToLower(input)) != true {
			t.Fatalf("prefilter %q of %q rejects the lower-cased %q, which matches", p.lits, pattern, input)
		}
	})
}

// FuzzRxCRS runs random inputs through every CRS @rx pattern with
// Rampart's operator and with Go's regexp: same verdicts and captures
// (the prefilter and RE2 change nothing).
func FuzzRxCRS(f *testing.F) {
	patterns := crsPatterns(f)
	ops := make([]*rx, 0, len(patterns))
	stds := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		op, err := newRx(optionsFor(p))
		if err != nil {
			f.Fatal(err)
		}
		if o, ok := op.(*rx); ok {
			ops = append(ops, o)
			stds = append(stds, regexp.MustCompile("(?sm)"+p))
		}
	}
	for _, s := range []string{"hello", "1 union select 2", "<script>alert(1)</script>", "; cat /etc/passwd",
		"../../etc/shadow", "javascript:alert(1)", "${jndi:ldap://x}", "item 42", "\xff\xfeselect", "bu\"s\"ybox"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 512 {
			return
		}
		for i, o := range ops {
			checkRx(t, patterns[i], stds[i], o, in)
		}
	})
}

// fuzzPatterns feeds a fuzz test random patterns (compiled as the CRS's
// are, with (?sm)) and inputs, seeded with seeds; check gets those that
// compile and are of a sensible size.
func fuzzPatterns(f *testing.F, seeds [][2]string, check func(t *testing.T, pattern string, re *regexp.Regexp, input string)) {
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, input string) {
		if len(pattern) > 200 || len(input) > 1000 {
			return
		}
		re, err := regexp.Compile("(?sm)" + pattern)
		if err != nil {
			return
		}
		check(t, pattern, re, input)
	})
}
