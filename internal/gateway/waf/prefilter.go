package waf

import (
	"bytes"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A literal prefilter is a necessary condition of a regular expression
// match, cheap to test: a set of literals one of which occurs (ASCII
// case-insensitively) in every ASCII input the expression matches. The
// @rx operator runs the expression only when the prefilter passes, so a
// prefilter must never reject an input the expression matches; it may
// accept inputs the expression does not match.
//
// The analysis is exact for ASCII inputs only (the only inputs whose
// case folding is plain ASCII folding and in which every character is
// one byte): inputs with any byte of 0x80 or above always pass.

// Limits of the analysis: larger literal sets are given up.
const (
	maxExactSet    = 64 // strings in the exact language of a sub-expression
	maxRequiredSet = 64 // literals of a prefilter
	maxClassChars  = 10 // ASCII characters of a class treated as alternatives
)

// prefilter holds the literals (lower-case ASCII, none empty) one of which
// every matching ASCII input contains; an empty set means no ASCII input
// matches.
type prefilter struct {
	lits []string
	litb [][]byte // lits as bytes, for lower-cased copies of inputs
}

// newPrefilter analyses the regular expression re (Go syntax, as the
// operator compiles it) and returns its prefilter, or nil when no useful
// literal is required.
func newPrefilter(re string) *prefilter {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	info := analyse(parsed.Simplify())
	req, ok := info.required()
	if !ok {
		return nil
	}
	if len(req) > 0 && shortest(req) < 2 && len(req) > 4 {
		// Many one-character literals cost more to test than they save.
		return nil
	}
	p := &prefilter{lits: req}
	for _, l := range req {
		p.litb = append(p.litb, []byte(l))
	}
	return p
}

// mayMatch reports whether s passes the prefilter: false only when the
// expression cannot match s.
func (p *prefilter) mayMatch(s string) bool {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return true
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if upper {
		var buf [512]byte
		var b []byte
		if len(s) <= len(buf) {
			b = buf[:len(s)]
		} else {
			b = make([]byte, len(s))
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		for _, l := range p.litb {
			if bytes.Contains(b, l) {
				return true
			}
		}
		return false
	}
	for _, l := range p.lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// info is what the analysis knows of a sub-expression, for ASCII inputs
// lower-cased: exact (when exactOK) is every string the sub-expression
// can match; req (when reqOK) is a set of literals one of which every
// match contains.
type info struct {
	exact   []string
	exactOK bool
	req     []string
	reqOK   bool
}

var (
	unknown   = info{}
	emptyOnly = info{exact: []string{""}, exactOK: true}
	nothing   = info{exact: []string{}, exactOK: true, req: []string{}, reqOK: true}
)

// required returns the best literal set every match contains.
func (i info) required() ([]string, bool) {
	if i.exactOK && !slices.Contains(i.exact, "") && len(i.exact) <= maxRequiredSet {
		if i.reqOK && better(i.req, i.exact) {
			return i.req, true
		}
		return i.exact, true
	}
	return i.req, i.reqOK
}

// better reports whether literal set a filters better than b: no
// literal at all (nothing matches) beats everything, then the longer
// shortest literal, then fewer literals.
func better(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) != 0
	}
	sa, sb := shortest(a), shortest(b)
	if sa != sb {
		return sa > sb
	}
	return len(a) < len(b)
}

func shortest(s []string) int {
	n := -1
	for _, x := range s {
		if n < 0 || len(x) < n {
			n = len(x)
		}
	}
	return n
}

// asciiSet returns the lower-cased ASCII characters a rune matches
// (its case-fold orbit when fold is set), deduplicated.
func asciiSet(r rune, fold bool) []string {
	var out []string
	add := func(r rune) {
		if r < utf8.RuneSelf {
			c := string(unicode.ToLower(r)) // ASCII: plain ASCII lower case
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	add(r)
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			add(f)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// product returns every concatenation of a string of a with one of b, or
// false when there would be more than maxExactSet.
func product(a, b []string) ([]string, bool) {
	if len(a)*len(b) > maxExactSet {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			if s := x + y; !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, true
}

func union(a, b []string, limit int) ([]string, bool) {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) > limit {
		return nil, false
	}
	if out == nil {
		out = []string{}
	}
	return out, true
}

func analyse(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpNoMatch:
		return nothing
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return emptyOnly
	case syntax.OpLiteral:
		set := []string{""}
		for _, r := range re.Rune {
			var ok bool
			if set, ok = product(set, asciiSet(r, re.Flags&syntax.FoldCase != 0)); !ok {
				return unknown
			}
		}
		return info{exact: set, exactOK: true}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
				for _, c := range asciiSet(r, false) {
					if !slices.Contains(set, c) {
						set = append(set, c)
					}
				}
				if len(set) > maxClassChars {
					return unknown
				}
			}
		}
		if set == nil {
			set = []string{} // only non-ASCII characters: no ASCII input matches
		}
		return info{exact: set, exactOK: true}
	case syntax.OpCapture:
		return analyse(re.Sub[0])
	case syntax.OpQuest:
		sub := analyse(re.Sub[0])
		if sub.exactOK {
			if set, ok := union(sub.exact, []string{""}, maxExactSet); ok {
				return info{exact: set, exactOK: true}
			}
		}
		return unknown
	case syntax.OpPlus:
		sub := analyse(re.Sub[0])
		req, ok := sub.required()
		return info{req: req, reqOK: ok}
	case syntax.OpRepeat:
		sub := analyse(re.Sub[0])
		if re.Min == 1 && re.Max == 1 {
			return sub
		}
		if re.Min >= 1 {
			req, ok := sub.required()
			return info{req: req, reqOK: ok}
		}
		return unknown
	case syntax.OpConcat:
		return analyseConcat(re.Sub)
	case syntax.OpAlternate:
		return analyseAlternate(re.Sub)
	}
	// OpAnyChar, OpAnyCharNotNL, OpStar and anything new: no knowledge.
	return unknown
}

// analyseConcat multiplies runs of adjacent exact sub-expressions into
// longer literals and keeps the best required set of any run or
// sub-expression: every match of the concatenation contains a match of
// each part.
func analyseConcat(subs []*syntax.Regexp) info {
	var (
		best   []string
		bestOK bool
		run    = []string{""}
		all    = true // every part so far exact and the run intact
	)
	consider := func(req []string, ok bool) {
		if ok && (!bestOK || better(req, best)) {
			best, bestOK = req, true
		}
	}
	closeRun := func() {
		consider(info{exact: run, exactOK: true}.required())
		run = []string{""}
	}
	for _, s := range subs {
		in := analyse(s)
		if in.exactOK {
			if len(in.exact) == 0 {
				return nothing
			}
			if p, ok := product(run, in.exact); ok {
				run = p
				continue
			}
			closeRun()
			all = false
			run = in.exact
			continue
		}
		closeRun()
		all = false
		consider(in.required())
	}
	if all {
		out := info{exact: run, exactOK: true}
		out.req, out.reqOK = best, bestOK
		return out
	}
	closeRun()
	return info{req: best, reqOK: bestOK}
}

// analyseAlternate: a match of the alternation is a match of one branch.
func analyseAlternate(subs []*syntax.Regexp) info {
	exact, exactOK := []string{}, true
	req, reqOK := []string{}, true
	for _, s := range subs {
		in := analyse(s)
		if exactOK {
			if in.exactOK {
				exact, exactOK = union(exact, in.exact, maxExactSet)
			} else {
				exactOK = false
			}
		}
		if reqOK {
			r, ok := in.required()
			if ok {
				req, reqOK = union(req, r, maxRequiredSet)
			} else {
				reqOK = false
			}
		}
		if !exactOK && !reqOK {
			return unknown
		}
	}
	if !exactOK {
		exact = nil
	}
	if !reqOK {
		req = nil
	}
	return info{exact: exact, exactOK: exactOK, req: req, reqOK: reqOK}
}
