package waf

import (
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	re2 "github.com/wasilibs/go-re2"
	"rsc.io/binaryregexp"
)

var registerOnce sync.Once

// registerOperators replaces Coraza's operators with faster ones where
// Rampart has them (once per process: Coraza's operator table is global).
func registerOperators() {
	registerOnce.Do(func() {
		plugins.RegisterOperator("rx", newRx)
		plugins.RegisterOperator("pm", newPM)
		plugins.RegisterOperator("pmFromFile", newPMFromFile)
		plugins.RegisterOperator("pmf", newPMFromFile)
	})
}

// rx is the @rx operator: Coraza's semantics (the pattern compiled by Go's
// regexp with the s and m flags, at most nine captures when the rule
// captures, patterns matching non-UTF-8 bytes on binaryregexp), with a
// literal prefilter that skips the expression for inputs it cannot match.
type rx struct {
	re    *regexp.Regexp
	re2   *re2.Regexp // the same pattern on RE2, for large programs; nil for small ones
	pre   *prefilter
	alpha *alphabet
}

type binaryRx struct {
	re *binaryregexp.Regexp
	// alpha is the alphabet filter of the pattern read as Go syntax: on
	// ASCII inputs binaryregexp's bytes and Go's runes are the same
	// characters, so the filter's answer holds for both.
	alpha *alphabet
}

type rxCompiled struct {
	re    *regexp.Regexp
	re2   *re2.Regexp
	pre   *prefilter
	alpha *alphabet
}

// re2MinInst is the size (instructions of Go's compiled program) from which
// a pattern runs on RE2: Go's backtracker and NFA slow down with the
// program's size, RE2's DFA hardly does, but each RE2 call costs about
// 0.16 µs. Measured on the CRS 4.25 patterns with short benign values:
// below 25 instructions Go and RE2 are even (about 0.17 µs a value), from
// 50 to 100 RE2 wins 35 of 49 patterns (0.17 against 0.46 µs), and above
// 200 Go's regexp takes 1.5 to 2.5 µs a value where RE2 still takes 0.17.
const re2MinInst = 50

// opRecord is one of Rampart's operators Coraza created while compiling
// a rule set, in creation order: the rule filter pairs them with the
// rules it reads.
type opRecord struct {
	name string // "rx", "pm" or "pmfromfile"
	arg  string
	op   plugintypes.Operator
}

// opLog collects the operators of the rule set being compiled (compiles
// are serialised by compileMu); nil outside a compile.
var (
	compileMu sync.Mutex
	opLog     atomic.Pointer[[]opRecord]
)

func recordOp(name, arg string, op plugintypes.Operator) {
	if l := opLog.Load(); l != nil {
		*l = append(*l, opRecord{name: name, arg: arg, op: op})
	}
}

func newRx(opt plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	op, err := compileRx(opt)
	if err != nil {
		return nil, err
	}
	recordOp("rx", opt.Arguments, op)
	return op, nil
}

func compileRx(opt plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	pattern := "(?sm)" + opt.Arguments
	if matchesArbitraryBytes(pattern) {
		re, err := memoize(opt.Memoizer, "rampart-binrx:"+opt.Arguments, func() (any, error) {
			return binaryregexp.Compile(opt.Arguments)
		})
		if err != nil {
			return nil, err
		}
		return &binaryRx{re: re.(*binaryregexp.Regexp), alpha: newAlphabet(opt.Arguments)}, nil
	}
	c, err := memoize(opt.Memoizer, "rampart-rx:"+pattern, func() (any, error) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, err
		}
		c := &rxCompiled{re: re, pre: newPrefilter(pattern), alpha: newAlphabet(pattern)}
		if useRE2(pattern) {
			if c.re2, err = re2.Compile(pattern); err != nil {
				c.re2 = nil // RE2 refuses what Go accepts: Go's regexp alone
			}
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	rc := c.(*rxCompiled)
	return &rx{re: rc.re, re2: rc.re2, pre: rc.pre, alpha: rc.alpha}, nil
}

// useRE2 reports whether pattern's Go program is large enough for RE2.
func useRE2(pattern string) bool {
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	prog, err := syntax.Compile(parsed.Simplify())
	return err == nil && len(prog.Inst) >= re2MinInst
}

func memoize(m plugintypes.Memoizer, key string, fn func() (any, error)) (any, error) {
	if m != nil {
		return m.Do(key, fn)
	}
	return fn()
}

// Evaluate reports whether value matches, capturing up to nine groups
// when the rule captures.
func (o *rx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.alpha != nil {
		if set, ascii := alphabetOf(value); ascii && !o.alpha.mayMatch(set) {
			return false
		}
	}
	if o.pre != nil && !o.pre.mayMatch(value) {
		return false
	}
	// RE2 stops at invalid UTF-8 where Go reads U+FFFD: such inputs
	// stay on Go's regexp.
	useRE2 := o.re2 != nil && utf8.ValidString(value)
	if !tx.Capturing() {
		if useRE2 {
			return o.re2.MatchString(value)
		}
		return o.re.MatchString(value)
	}
	var m []int
	if useRE2 {
		m = o.re2.FindStringSubmatchIndex(value)
	} else {
		m = o.re.FindStringSubmatchIndex(value)
	}
	if m == nil {
		return false
	}
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

// Evaluate is Evaluate for patterns matching arbitrary bytes.
func (o *binaryRx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.alpha != nil {
		if set, ascii := alphabetOf(value); ascii && !o.alpha.mayMatch(set) {
			return false
		}
	}
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	m := o.re.FindStringSubmatch(value)
	if len(m) == 0 {
		return false
	}
	for i, c := range m {
		if i == 9 {
			break
		}
		tx.CaptureField(i, c)
	}
	return true
}

// matchesArbitraryBytes reports whether the pattern's \xNN escapes spell
// bytes that are not valid UTF-8 (Coraza then matches with binaryregexp).
func matchesArbitraryBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' {
			decoded = append(decoded, c)
			continue
		}
		if i+3 >= len(expr) {
			decoded = append(decoded, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			decoded = append(decoded, expr[i])
			continue
		}
		sub := expr[i:]
		advance := 3
		if len(sub) >= 6 && sub[2] == '{' {
			if end := strings.IndexByte(sub, '}'); end != -1 {
				sub = `\x` + sub[3:end]
				advance = end
			}
		}
		v, mb, _, err := strconv.UnquoteChar(sub, 0)
		if err != nil || mb {
			decoded = append(decoded, expr[i])
			continue
		}
		decoded = append(decoded, byte(v))
		i += advance
	}
	return !utf8.Valid(decoded)
}

// matches reports whether value matches, without captures: Evaluate for
// a rule that does not capture.
func (o *rx) matches(value string) bool {
	if o.alpha != nil {
		if set, ascii := alphabetOf(value); ascii && !o.alpha.mayMatch(set) {
			return false
		}
	}
	if o.pre != nil && !o.pre.mayMatch(value) {
		return false
	}
	if o.re2 != nil && utf8.ValidString(value) {
		return o.re2.MatchString(value)
	}
	return o.re.MatchString(value)
}
