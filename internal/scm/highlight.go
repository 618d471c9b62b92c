package scm

import (
	"bytes"
	"html/template"
	"strings"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
)

// Syntax highlighting with chroma: tokens become spans with CSS classes
// (the CSP forbids inline styles), styled by the stylesheet StyleCSS
// returns.

const (
	hlPrefix = "hl-"
	// maxHighlight is the largest text highlighted; larger files are
	// shown plain.
	maxHighlight = 256 << 10
)

// StyleCSS is the stylesheet of highlighted code.
func StyleCSS() string {
	var b bytes.Buffer
	f := chromahtml.New(chromahtml.WithClasses(true), chromahtml.ClassPrefix(hlPrefix))
	_ = f.WriteCSS(&b, styles.Get("github"))
	return b.String()
}

func tokenClass(t chroma.TokenType) string {
	for t != 0 {
		if cls, ok := chroma.StandardTypes[t]; ok {
			if cls == "" {
				return ""
			}
			return hlPrefix + cls
		}
		t = t.Parent()
	}
	return ""
}

// highlightLines returns each line of lines as highlighted HTML, using
// the lexer chroma picks for path (plain text when none fits).
func highlightLines(path string, lines []string) []template.HTML {
	out := make([]template.HTML, len(lines))
	text := strings.Join(lines, "\n")
	lexer := lexers.Match(path)
	if lexer == nil || len(text) > maxHighlight {
		for i, l := range lines {
			out[i] = template.HTML(template.HTMLEscapeString(l))
		}
		return out
	}
	it, err := chroma.Coalesce(lexer).Tokenise(nil, text+"\n")
	if err != nil {
		for i, l := range lines {
			out[i] = template.HTML(template.HTMLEscapeString(l))
		}
		return out
	}
	for i, toks := range chroma.SplitTokensIntoLines(it.Tokens()) {
		if i >= len(out) {
			break
		}
		var b strings.Builder
		for _, t := range toks {
			v := strings.TrimSuffix(t.Value, "\n")
			if v == "" {
				continue
			}
			if cls := tokenClass(t.Type); cls != "" {
				b.WriteString(`<span class="` + cls + `">` + template.HTMLEscapeString(v) + `</span>`)
			} else {
				b.WriteString(template.HTMLEscapeString(v))
			}
		}
		out[i] = template.HTML(b.String())
	}
	return out
}
