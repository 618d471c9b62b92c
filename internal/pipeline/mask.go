package pipeline

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"sort"
	"strings"
)

// maskText replaces a secret in logs.
const maskText = "***"

// minSecretLen is the shortest value masked: shorter ones would mangle
// ordinary output ("a", "1"), so a job whose secret is shorter is refused.
const minSecretLen = 4

// minLineLen is the shortest line of a multi-line secret masked on its
// own: shorter lines ("}", "true") would mangle ordinary output.
const minLineLen = 8

// maskForms returns the forms of a secret value that are masked: the value
// itself, its standard and URL-safe base64 encodings (at each of the three
// alignments it can have inside a longer encoded stream, padded and not),
// its URL query and path escapings and its JSON string escaping; and, for
// a multi-line value (a PEM key), each of its lines of minLineLen bytes or
// more, which output shows indented, with CRLF or escaped as JSON.
func maskForms(secret string) []string {
	set := map[string]bool{secret: true}
	add := func(s string) {
		if len(s) >= minSecretLen {
			set[s] = true
		}
	}
	add(url.QueryEscape(secret))
	add(url.PathEscape(secret))
	add(jsonEscaped(secret))
	if strings.ContainsAny(secret, "\r\n") {
		for line := range strings.FieldsFuncSeq(secret, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= minLineLen {
				set[line] = true
				set[jsonEscaped(line)] = true
			}
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString([]byte(secret)))
		for shift := 0; shift < 3; shift++ {
			// Encoded with shift bytes before it, the characters wholly
			// determined by the secret's bits are the same whatever
			// surrounds it.
			buf := make([]byte, shift+len(secret))
			copy(buf[shift:], secret)
			s := enc.WithPadding(base64.NoPadding).EncodeToString(buf)
			start := (8*shift + 5) / 6
			end := 8 * (shift + len(secret)) / 6
			if end > len(s) {
				end = len(s)
			}
			if start < end {
				add(s[start:end])
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	return out
}

// jsonEscaped is s as it appears inside a JSON string.
func jsonEscaped(s string) string {
	b, err := json.Marshal(s)
	if err != nil || len(b) < 2 {
		return s
	}
	return string(b[1 : len(b)-1])
}

// Masker is a streaming writer that replaces every form of its secrets
// with *** before passing the bytes on, also when a secret is split
// across several writes: it holds back the last len(longest form)-1 bytes
// until more arrive or Close is called.
type Masker struct {
	w       io.Writer
	pats    [][]byte
	byFirst [256][]int // pattern indexes by first byte, longest first
	maxLen  int
	pending []byte
	out     []byte
}

// NewMasker returns a masker writing to w. Secrets shorter than
// minSecretLen are ignored (callers refuse them before).
func NewMasker(w io.Writer, secrets []string) *Masker {
	m := &Masker{w: w}
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		for _, f := range maskForms(s) {
			if !seen[f] {
				seen[f] = true
				m.pats = append(m.pats, []byte(f))
			}
		}
	}
	sort.Slice(m.pats, func(i, j int) bool { return len(m.pats[i]) > len(m.pats[j]) })
	for i, p := range m.pats {
		m.byFirst[p[0]] = append(m.byFirst[p[0]], i)
		m.maxLen = max(m.maxLen, len(p))
	}
	return m
}

// Write masks p; it reports len(p) when the underlying writer accepted
// what could be passed on.
func (m *Masker) Write(p []byte) (int, error) {
	if len(m.pats) == 0 {
		return m.w.Write(p)
	}
	m.pending = append(m.pending, p...)
	if err := m.flush(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close passes on what is held back (masked) without closing the
// underlying writer.
func (m *Masker) Close() error {
	if len(m.pats) == 0 {
		return nil
	}
	return m.flush(true)
}

func (m *Masker) flush(final bool) error {
	buf := m.pending
	safe := len(buf) - (m.maxLen - 1)
	if final {
		safe = len(buf)
	}
	out := m.out[:0]
	pos := 0
	for pos < len(buf) {
		matched := 0
		for _, i := range m.byFirst[buf[pos]] {
			p := m.pats[i]
			if pos+len(p) <= len(buf) && string(buf[pos:pos+len(p)]) == string(p) {
				matched = len(p)
				break
			}
		}
		if matched > 0 {
			// A match starting before safe is complete: a longer
			// pattern would fit in the buffer too and was tried first.
			if pos >= safe && !final {
				break
			}
			out = append(out, maskText...)
			pos += matched
			continue
		}
		if pos >= safe {
			break
		}
		out = append(out, buf[pos])
		pos++
	}
	m.pending = append(m.pending[:0], buf[pos:]...)
	m.out = out
	if len(out) == 0 {
		return nil
	}
	_, err := m.w.Write(out)
	return err
}
