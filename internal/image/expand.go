package image

import (
	"errors"
	"strings"
	"unicode"
)

// maxExpansion bounds the length of one expanded word, so that ENV x=$x$x
// repeated cannot exhaust memory.
const maxExpansion = 64 << 10

// maxExpandDepth bounds nested ${a:-${b:-…}} expansions.
const maxExpandDepth = 16

// lookupFunc returns a variable's value and whether it is set.
type lookupFunc func(name string) (string, bool)

// expander performs the shell-like word processing of Dockerfiles: quote
// removal, the escape character and $VAR, ${VAR}, ${VAR:-word},
// ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg}, ${VAR?msg}.
type expander struct {
	esc    rune
	lookup lookupFunc
}

// word processes s as one word (whitespace is kept).
func (e expander) word(s string) (string, error) {
	out, err := e.process(s, false, 0)
	if err != nil {
		return "", err
	}
	if len(out) == 0 {
		return "", nil
	}
	return out[0], nil
}

// words processes s and splits it on unquoted whitespace.
func (e expander) words(s string) ([]string, error) {
	return e.process(s, true, 0)
}

func (e expander) process(s string, split bool, depth int) ([]string, error) {
	if depth > maxExpandDepth {
		return nil, errors.New("variables nested too deeply")
	}
	rs := []rune(s)
	var words []string
	var cur strings.Builder
	inWord := false
	emit := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	grow := func(str string) error {
		if cur.Len()+len(str) > maxExpansion {
			return errors.New("expanded value longer than 64 KiB")
		}
		cur.WriteString(str)
		inWord = true
		return nil
	}
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case split && unicode.IsSpace(c):
			emit()
		case c == e.esc:
			if i+1 < len(rs) {
				i++
				if err := grow(string(rs[i])); err != nil {
					return nil, err
				}
			} else if err := grow(string(c)); err != nil {
				return nil, err
			}
		case c == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, errors.New("unterminated single quote")
			}
			if err := grow(string(rs[i+1 : j])); err != nil {
				return nil, err
			}
			i = j
		case c == '"':
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				switch {
				case rs[j] == e.esc && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '$' || rs[j+1] == e.esc):
					j++
					if err := grow(string(rs[j])); err != nil {
						return nil, err
					}
				case rs[j] == '$':
					v, n, err := e.variable(rs, j, depth)
					if err != nil {
						return nil, err
					}
					if err := grow(v); err != nil {
						return nil, err
					}
					j = n - 1
				default:
					if err := grow(string(rs[j])); err != nil {
						return nil, err
					}
				}
			}
			if j >= len(rs) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
			i = j
		case c == '$':
			v, n, err := e.variable(rs, i, depth)
			if err != nil {
				return nil, err
			}
			if err := grow(v); err != nil {
				return nil, err
			}
			i = n - 1
		default:
			if err := grow(string(c)); err != nil {
				return nil, err
			}
		}
	}
	emit()
	if !split && len(words) == 0 {
		words = []string{""}
	}
	return words, nil
}

func isNameStart(r rune) bool { return r == '_' || r < 128 && unicode.IsLetter(r) }
func isNameRune(r rune) bool  { return isNameStart(r) || r >= '0' && r <= '9' }

// variable expands the reference starting at rs[i] == '$' and returns its
// value and the index after it. A '$' not followed by a name is literal.
func (e expander) variable(rs []rune, i, depth int) (string, int, error) {
	j := i + 1
	if j < len(rs) && isNameStart(rs[j]) {
		for j < len(rs) && isNameRune(rs[j]) {
			j++
		}
		v, _ := e.lookup(string(rs[i+1 : j]))
		return v, j, nil
	}
	if j >= len(rs) || rs[j] != '{' {
		return "$", j, nil
	}
	// ${NAME…}
	j++
	start := j
	for j < len(rs) && isNameRune(rs[j]) {
		j++
	}
	name := string(rs[start:j])
	if name == "" || !isNameStart(rs[start]) {
		return "", 0, errors.New("bad variable name in ${…}")
	}
	if j >= len(rs) {
		return "", 0, errors.New("missing } in ${" + name)
	}
	if rs[j] == '}' {
		v, _ := e.lookup(name)
		return v, j + 1, nil
	}
	colon := false
	if rs[j] == ':' {
		colon = true
		j++
	}
	if j >= len(rs) {
		return "", 0, errors.New("missing } in ${" + name)
	}
	op := rs[j]
	if op != '-' && op != '+' && op != '?' {
		return "", 0, errors.New("unsupported modifier in ${" + name + "…} (supported: :- - :+ + :? ?)")
	}
	j++
	// The word runs to the matching brace.
	wstart, nest := j, 0
	for ; j < len(rs); j++ {
		if rs[j] == e.esc {
			j++
			continue
		}
		if rs[j] == '{' {
			nest++
		}
		if rs[j] == '}' {
			if nest == 0 {
				break
			}
			nest--
		}
	}
	if j >= len(rs) {
		return "", 0, errors.New("missing } in ${" + name)
	}
	raw := string(rs[wstart:j])
	val, set := e.lookup(name)
	present := set && (!colon || val != "")
	expandWord := func() (string, error) {
		w, err := e.process(raw, false, depth+1)
		if err != nil {
			return "", err
		}
		return w[0], nil
	}
	switch op {
	case '-':
		if present {
			return val, j + 1, nil
		}
		w, err := expandWord()
		return w, j + 1, err
	case '+':
		if !present {
			return "", j + 1, nil
		}
		w, err := expandWord()
		return w, j + 1, err
	default: // '?'
		if present {
			return val, j + 1, nil
		}
		w, err := expandWord()
		if err != nil {
			return "", 0, err
		}
		if w == "" {
			w = "not set"
		}
		return "", 0, errors.New(name + ": " + w)
	}
}
