package pipeline

import (
	"fmt"
	"strings"
)

// Condition is a compiled `if` expression. The language is small:
//
//	expr    = or
//	or      = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | primary
//	primary = "(" expr ")" | call | operand [ ("==" | "!=") operand ]
//	call    = "success()" | "failure()" | "always()" | "cancelled()"
//	operand = name | 'string' | "string"
//
// Names are the run's context: event (push, pull_request, manual,
// schedule), branch, tag, ref, sha, repo, actor, and matrix.KEY. A name
// alone is true when it is not empty. success() is true when every job
// this one needs succeeded (the default condition), failure() when one of
// them failed, always() always.
type Condition struct {
	src  string
	root node
}

// Context is what a condition is evaluated against.
type Context struct {
	Vars   map[string]string
	Failed bool // a needed job (or an earlier step) failed
	// Cancelled is set when the run was cancelled.
	Cancelled bool
}

type node interface{ eval(*Context) (string, bool) }

type (
	orNode  struct{ l, r node }
	andNode struct{ l, r node }
	notNode struct{ x node }
	cmpNode struct {
		l, r node
		neq  bool
	}
	litNode  struct{ s string }
	nameNode struct{ name string }
	callNode struct{ fn string }
)

func (n orNode) eval(c *Context) (string, bool) {
	if _, b := n.l.eval(c); b {
		return "true", true
	}
	_, b := n.r.eval(c)
	return "", b
}

func (n andNode) eval(c *Context) (string, bool) {
	if _, b := n.l.eval(c); !b {
		return "", false
	}
	_, b := n.r.eval(c)
	return "", b
}

func (n notNode) eval(c *Context) (string, bool) {
	_, b := n.x.eval(c)
	return "", !b
}

func (n cmpNode) eval(c *Context) (string, bool) {
	l, _ := n.l.eval(c)
	r, _ := n.r.eval(c)
	return "", (l == r) != n.neq
}

func (n litNode) eval(*Context) (string, bool) { return n.s, n.s != "" }

func (n nameNode) eval(c *Context) (string, bool) {
	v := c.Vars[n.name]
	return v, v != ""
}

func (n callNode) eval(c *Context) (string, bool) {
	switch n.fn {
	case "always":
		return "", true
	case "failure":
		return "", c.Failed && !c.Cancelled
	case "cancelled":
		return "", c.Cancelled
	default: // success
		return "", !c.Failed && !c.Cancelled
	}
}

// maxExpr bounds an expression's length and nesting.
const (
	maxExpr      = 1024
	maxExprDepth = 32
)

// knownNames are the context names a condition may use (besides matrix.*).
var knownNames = map[string]bool{"event": true, "branch": true, "tag": true, "ref": true, "sha": true, "repo": true, "actor": true}

// ParseCondition compiles an `if` expression. The empty string is
// success().
func ParseCondition(src string) (*Condition, error) {
	if len(src) > maxExpr {
		return nil, fmt.Errorf("condition longer than %d characters", maxExpr)
	}
	if strings.TrimSpace(src) == "" {
		return &Condition{src: src, root: callNode{"success"}}, nil
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q in condition", p.toks[p.pos].s)
	}
	return &Condition{src: src, root: n}, nil
}

// Eval evaluates the condition.
func (c *Condition) Eval(ctx *Context) bool {
	_, b := c.root.eval(ctx)
	return b
}

// UsesStatus reports whether the condition calls always(), failure() or
// cancelled(): without one, a failed dependency skips the job.
func (c *Condition) UsesStatus() bool {
	return strings.Contains(c.src, "always()") || strings.Contains(c.src, "failure()") || strings.Contains(c.src, "cancelled()")
}

func (c *Condition) String() string { return c.src }

type token struct {
	kind byte // 'n' name, 's' string, 'o' operator, 'c' call
	s    string
}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		ch := src[i]
		switch {
		case ch == ' ' || ch == '\t':
			i++
		case ch == '(' || ch == ')':
			toks = append(toks, token{'o', string(ch)})
			i++
		case strings.HasPrefix(src[i:], "&&"), strings.HasPrefix(src[i:], "||"), strings.HasPrefix(src[i:], "=="), strings.HasPrefix(src[i:], "!="):
			toks = append(toks, token{'o', src[i : i+2]})
			i += 2
		case ch == '!':
			toks = append(toks, token{'o', "!"})
			i++
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(src[i+1:], ch)
			if j < 0 {
				return nil, fmt.Errorf("unterminated string in condition")
			}
			toks = append(toks, token{'s', src[i+1 : i+1+j]})
			i += j + 2
		case isNameByte(ch):
			j := i
			for j < len(src) && (isNameByte(src[j]) || src[j] == '.' || src[j] == '-' || (src[j] >= '0' && src[j] <= '9')) {
				j++
			}
			name := src[i:j]
			if strings.HasPrefix(src[j:], "()") {
				switch name {
				case "success", "failure", "always", "cancelled":
				default:
					return nil, fmt.Errorf("unknown function %s() in condition (use success(), failure(), always() or cancelled())", name)
				}
				toks = append(toks, token{'c', name})
				i = j + 2
				continue
			}
			if !knownNames[name] && !strings.HasPrefix(name, "matrix.") {
				return nil, fmt.Errorf("unknown name %q in condition (known: event, branch, tag, ref, sha, repo, actor, matrix.KEY)", name)
			}
			toks = append(toks, token{'n', name})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q in condition", ch)
		}
	}
	return toks, nil
}

func isNameByte(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek(s string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == 'o' && p.toks[p.pos].s == s
}

func (p *parser) expr(depth int) (node, error) {
	if depth > maxExprDepth {
		return nil, fmt.Errorf("condition nested too deeply")
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.peek("||") {
		p.pos++
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.peek("&&") {
		p.pos++
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary(depth int) (node, error) {
	if depth > maxExprDepth {
		return nil, fmt.Errorf("condition nested too deeply")
	}
	if p.peek("!") {
		p.pos++
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.primary(depth)
}

func (p *parser) primary(depth int) (node, error) {
	if p.peek("(") {
		p.pos++
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("missing ) in condition")
		}
		p.pos++
		return n, nil
	}
	if p.pos < len(p.toks) && p.toks[p.pos].kind == 'c' {
		p.pos++
		return callNode{p.toks[p.pos-1].s}, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.peek("==") || p.peek("!=") {
		neq := p.toks[p.pos].s == "!="
		p.pos++
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		return cmpNode{l, r, neq}, nil
	}
	return l, nil
}

func (p *parser) operand() (node, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("condition ends too early")
	}
	t := p.toks[p.pos]
	switch t.kind {
	case 'n':
		p.pos++
		return nameNode{t.s}, nil
	case 's':
		p.pos++
		return litNode{t.s}, nil
	}
	return nil, fmt.Errorf("unexpected %q in condition", t.s)
}
