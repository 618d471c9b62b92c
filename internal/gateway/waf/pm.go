package waf

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// pm is the @pm and @pmFromFile operator with Coraza's semantics: the
// phrases lower-cased, matched ASCII case-insensitively anywhere in the
// value by an Aho-Corasick automaton (leftmost longest), up to ten
// matches captured when the rule captures. Rampart registers its own so
// the rule filter can read the phrases the operator holds: phraseSets
// are the byte sets of the phrases, minimal under inclusion (a value can
// hold a phrase only if its folded byte set contains the phrase's).
type pm struct {
	matcher    ahocorasick.AhoCorasick
	minLen     int
	phraseSets []byteSet
	anyPhrase  bool // an empty or non-ASCII phrase: the sets say nothing
}

func newPM(opt plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data := strings.ToLower(opt.Arguments)
	op, err := buildPM(opt.Memoizer, "rampart-pm:"+data, strings.Split(data, " "), true)
	if err != nil {
		return nil, err
	}
	recordOp("pm", opt.Arguments, op)
	return op, nil
}

func newPMFromFile(opt plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data, err := readDataFile(opt.Arguments, opt.Path, opt.Root)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		lines = append(lines, strings.ToLower(l))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	op, err := buildPM(opt.Memoizer, "rampart-pmf:"+strings.Join(opt.Path, ",")+opt.Arguments, lines, false)
	if err != nil {
		return nil, err
	}
	recordOp("pmfromfile", opt.Arguments, op)
	return op, nil
}

func buildPM(m plugintypes.Memoizer, key string, phrases []string, dfa bool) (*pm, error) {
	v, err := memoize(m, key, func() (any, error) {
		b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{
			AsciiCaseInsensitive: true,
			MatchOnlyWholeWords:  false,
			MatchKind:            ahocorasick.LeftMostLongestMatch,
			DFA:                  dfa,
		})
		o := &pm{matcher: b.Build(phrases)}
		o.phraseSets, o.anyPhrase = minimalSets(phrases)
		for _, p := range phrases {
			if p == "" {
				o.minLen = 0
				break
			}
			if o.minLen == 0 || len(p) < o.minLen {
				o.minLen = len(p)
			}
		}
		return o, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*pm), nil
}

// minimalSets returns the byte sets of phrases, keeping only those no
// other set is contained in; true when a phrase is empty or has a byte of
// 0x80 or more.
func minimalSets(phrases []string) ([]byteSet, bool) {
	var sets []byteSet
	for _, p := range phrases {
		s, ascii := alphabetOf(p)
		if !ascii || p == "" {
			return nil, true
		}
		sets = append(sets, s)
	}
	var out []byteSet
	for i, s := range sets {
		minimal := true
		for j, o := range sets {
			if j != i && subset(o, s) && (o != s || j < i) {
				minimal = false
				break
			}
		}
		if minimal {
			out = append(out, s)
		}
	}
	return out, false
}

func subset(a, b byteSet) bool { return a[0]&^b[0] == 0 && a[1]&^b[1] == 0 }

// mayHold reports whether a value whose bytes lie in set may contain a
// phrase.
func (o *pm) mayHold(set byteSet) bool {
	if o.anyPhrase {
		return true
	}
	set = lowerOf(set)
	for _, p := range o.phraseSets {
		if subset(p, set) {
			return true
		}
	}
	return false
}

// matches reports whether value contains a phrase (no captures).
func (o *pm) matches(value string) bool {
	if len(value) < o.minLen {
		return false
	}
	return o.matcher.Iter(value).Next() != nil
}

func (o *pm) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if len(value) < o.minLen {
		return false
	}
	iter := o.matcher.Iter(value)
	if !tx.Capturing() {
		return iter.Next() != nil
	}
	n := 0
	for m := iter.Next(); m != nil; m = iter.Next() {
		tx.CaptureField(n, value[m.Start():m.End()])
		n++
		if n == 10 {
			break
		}
	}
	return n > 0
}

// readDataFile reads a data file as Coraza does: an absolute path from
// root, else the first of dirs that has it.
func readDataFile(name string, dirs []string, root fs.FS) ([]byte, error) {
	if path.IsAbs(name) {
		return fs.ReadFile(root, name)
	}
	if len(dirs) == 0 {
		return nil, errors.New("no directory to read " + name + " from")
	}
	var err error
	for _, d := range dirs {
		var b []byte
		b, err = fs.ReadFile(root, path.Join(d, name))
		if err == nil {
			return b, nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
	}
	return nil, err
}
