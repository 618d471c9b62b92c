package boards

import "strings"

// Limits of the AB# reference parser: text beyond MaxRefText bytes is not
// read, and at most MaxRefs distinct items are taken from one text.
const (
	MaxRefText = 64 << 10
	MaxRefs    = 50
	// maxRefDigits bounds a work item number: nine digits.
	maxRefDigits = 9
)

// Ref is a work item mentioned in a text as AB#N.
type Ref struct {
	Number int64
	// Fixes is set when a closing keyword precedes the mention ("Fixes
	// AB#12", "closes: AB#3, AB#4"): merged into the default branch, it
	// resolves the item.
	Fixes bool
}

// fixWords are the closing keywords, lower case.
var fixWords = []string{"fix", "fixes", "fixed", "close", "closes", "closed", "resolve", "resolves", "resolved"}

// ParseRefs returns the work items text mentions, in order of first
// mention, each once. A mention is "AB#" (any case) followed by one to nine
// digits, standing alone: not glued to a letter, digit or underscore on
// either side. A mention after a closing keyword (fix, fixes, fixed, close,
// closes, closed, resolve, resolves, resolved; an optional colon), or
// chained to such a mention by ",", "&" or "and", is marked Fixes.
func ParseRefs(text string) []Ref {
	if len(text) > MaxRefText {
		text = text[:MaxRefText]
	}
	var (
		out   []Ref
		index = map[int64]int{}
		// chain is set while the mentions read are governed by a closing
		// keyword; pos is where the text after the last one starts.
		chain bool
	)
	add := func(n int64, fixes bool) {
		if i, ok := index[n]; ok {
			out[i].Fixes = out[i].Fixes || fixes
			return
		}
		if len(out) < MaxRefs {
			index[n] = len(out)
			out = append(out, Ref{Number: n, Fixes: fixes})
		}
	}
	i := 0
	for i < len(text) {
		c := text[i]
		if !isWord(c) {
			i++
			continue
		}
		// A word starts at i (the byte before it is not a word byte).
		if n, end, ok := mention(text, i); ok {
			add(n, chain)
			i = end
			// The chain goes on through ",", "&" or "and" to the next
			// mention; anything else ends it.
			if chain {
				if next, ok := chainsOn(text, end); ok {
					i = next
				} else {
					chain = false
				}
			}
			continue
		}
		j := i
		for j < len(text) && isWord(text[j]) {
			j++
		}
		word := text[i:j]
		chain = false
		if isFixWord(word) {
			k := j
			if k < len(text) && text[k] == ':' {
				k++
			}
			ws := k
			for k < len(text) && isSpace(text[k]) {
				k++
			}
			if k > ws || k > j {
				if _, _, ok := mention(text, k); ok {
					chain = true
					j = k
				}
			}
		}
		i = j
	}
	return out
}

// mention reads "AB#digits" at text[i:], which starts a word, and returns
// the number and where the mention ends.
func mention(text string, i int) (int64, int, bool) {
	if i+3 > len(text) || !strings.EqualFold(text[i:i+3], "ab#") {
		return 0, 0, false
	}
	j := i + 3
	var n int64
	for j < len(text) && text[j] >= '0' && text[j] <= '9' {
		if j-(i+3) >= maxRefDigits {
			return 0, 0, false
		}
		n = n*10 + int64(text[j]-'0')
		j++
	}
	if j == i+3 || n == 0 || (j < len(text) && isWord(text[j])) {
		return 0, 0, false
	}
	return n, j, true
}

// chainsOn reports whether the text at i continues a list of mentions —
// optional spaces, then ",", "&" or the word "and", then spaces and a
// mention — and where that mention starts.
func chainsOn(text string, i int) (int, bool) {
	for i < len(text) && isSpace(text[i]) {
		i++
	}
	switch {
	case i < len(text) && (text[i] == ',' || text[i] == '&'):
		i++
	case i+3 <= len(text) && strings.EqualFold(text[i:i+3], "and") && (i+3 == len(text) || !isWord(text[i+3])):
		i += 3
	default:
		return 0, false
	}
	for i < len(text) && isSpace(text[i]) {
		i++
	}
	_, _, ok := mention(text, i)
	return i, ok
}

func isFixWord(w string) bool {
	if len(w) > len("resolves") {
		return false
	}
	for _, f := range fixWords {
		if strings.EqualFold(w, f) {
			return true
		}
	}
	return false
}

// isWord reports whether c continues a word. Bytes of multi-byte UTF-8
// characters count as word bytes, so "éAB#1" is not a mention.
func isWord(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
