package iac

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Limits that keep hostile HCL from exhausting the parser's stack: the
// parser recurses once per bracket, unary operator and conditional, so a
// file made of a million "!" would crash the process, not fail.
const (
	maxHCLDepth = 64  // nesting of (), [], {}, quotes and template sequences
	maxHCLOps   = 256 // operators in one expression
)

// hclFuncs are the functions evaluated in constant expressions: pure, and
// with output no larger or deeper than their input (no join, format or
// range, which could build a huge value from a small file, and no
// jsondecode, which could build one nested deeper than the file shows).
var hclFuncs = map[string]function.Function{
	"jsonencode": stdlib.JSONEncodeFunc,
	"lower":      stdlib.LowerFunc,
	"upper":      stdlib.UpperFunc,
	"trimspace":  stdlib.TrimSpaceFunc,
	"concat":     stdlib.ConcatFunc,
	"merge":      stdlib.MergeFunc,
	"coalesce":   stdlib.CoalesceFunc,
	"tostring":   stdlib.MakeToFunc(cty.String),
	"tonumber":   stdlib.MakeToFunc(cty.Number),
	"tobool":     stdlib.MakeToFunc(cty.Bool),
	"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
}

var hclEvalContext = &hcl.EvalContext{Functions: hclFuncs}

// terraformInput turns a Terraform file into the input document described
// in doc.go.
func terraformInput(path string, data []byte) (map[string]any, error) {
	if err := checkHCLBytes(data); err != nil {
		return nil, err
	}
	tokens, diags := hclsyntax.LexConfig(data, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, hclError(diags)
	}
	if err := checkHCLComplexity(tokens); err != nil {
		return nil, err
	}
	f, diags := hclsyntax.ParseConfig(data, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, hclError(diags)
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, errors.New("not HCL native syntax")
	}
	blocks := make([]any, 0, len(body.Blocks))
	for _, b := range body.Blocks {
		blk := hclBlock(b)
		blk["address"] = address(b.Type, b.Labels)
		blocks = append(blocks, blk)
	}
	return map[string]any{
		"kind":       "terraform",
		"path":       path,
		"attributes": hclAttributes(body.Attributes),
		"blocks":     blocks,
	}, nil
}

// hclError reports the first error of diags with its position.
func hclError(diags hcl.Diagnostics) error {
	var first *hcl.Diagnostic
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			if first == nil {
				first = d
			}
			n++
		}
	}
	msg := first.Summary
	if first.Detail != "" {
		msg += ": " + first.Detail
	}
	if first.Subject != nil {
		msg = fmt.Sprintf("line %d, column %d: %s", first.Subject.Start.Line, first.Subject.Start.Column, msg)
	}
	if n > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", n-1)
	}
	return errors.New(msg)
}

// checkHCLBytes refuses, before lexing, the sources that would be all
// tokens: the lexer spends about 550 bytes per token, so a megabyte of
// "[" would cost more than half a gigabyte. It counts brackets and runs
// of operator characters, strings included, with limits well above
// those of checkHCLComplexity, which then counts precisely.
func checkHCLBytes(data []byte) error {
	depth, run, line := 0, 0, 1
	for _, b := range data {
		switch b {
		case '(', '[', '{':
			if depth++; depth > 4*maxHCLDepth {
				return fmt.Errorf("line %d: brackets nested deeper than %d levels", line, 4*maxHCLDepth)
			}
			run = 0
		case ')', ']', '}':
			depth = max(depth-1, 0)
			run = 0
		case '!', '-', '+', '*', '/', '%', '<', '>', '=', '&', '|', '?', ':':
			if run++; run > 4*maxHCLOps {
				return fmt.Errorf("line %d: a run of more than %d operator characters", line, 4*maxHCLOps)
			}
		case ' ', '\t', '\r':
		case '\n':
			line++
		default:
			run = 0
		}
	}
	return nil
}

// checkHCLComplexity refuses token streams that would nest the parser
// deeper than the limits. Each open bracket starts a group with its own
// operator count; a comma, or a newline inside braces and brackets, ends
// one expression and starts the next.
func checkHCLComplexity(tokens hclsyntax.Tokens) error {
	type group struct {
		open hclsyntax.TokenType
		ops  int
	}
	stack := []group{{open: hclsyntax.TokenNil}}
	for _, tok := range tokens {
		top := &stack[len(stack)-1]
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if len(stack) > maxHCLDepth {
				return fmt.Errorf("line %d: expressions nested deeper than %d levels", tok.Range.Start.Line, maxHCLDepth)
			}
			stack = append(stack, group{open: tok.Type})
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenComma:
			top.ops = 0
		case hclsyntax.TokenNewline:
			if top.open == hclsyntax.TokenNil || top.open == hclsyntax.TokenOBrace || top.open == hclsyntax.TokenOBrack {
				top.ops = 0
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar, hclsyntax.TokenSlash,
			hclsyntax.TokenPercent, hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenBang,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan,
			hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenQuestion, hclsyntax.TokenColon, hclsyntax.TokenEllipsis:
			top.ops++
			if top.ops > maxHCLOps {
				return fmt.Errorf("line %d: more than %d operators in one expression", tok.Range.Start.Line, maxHCLOps)
			}
		}
	}
	return nil
}

// address names a top-level block the way Terraform does.
func address(typ string, labels []string) string {
	switch {
	case typ == "resource" && len(labels) == 2:
		return labels[0] + "." + labels[1]
	case typ == "data" && len(labels) == 2:
		return "data." + labels[0] + "." + labels[1]
	case typ == "module" && len(labels) == 1:
		return "module." + labels[0]
	case typ == "variable" && len(labels) == 1:
		return "var." + labels[0]
	case typ == "output" && len(labels) == 1:
		return "output." + labels[0]
	}
	return strings.Join(append([]string{typ}, labels...), ".")
}

func hclBlock(b *hclsyntax.Block) map[string]any {
	labels := make([]any, len(b.Labels))
	for i, l := range b.Labels {
		labels[i] = l
	}
	nested := make([]any, 0, len(b.Body.Blocks))
	for _, nb := range b.Body.Blocks {
		nested = append(nested, hclBlock(nb))
	}
	return map[string]any{
		"type":       b.Type,
		"labels":     labels,
		"line":       b.TypeRange.Start.Line,
		"end_line":   b.Body.SrcRange.End.Line,
		"attributes": hclAttributes(b.Body.Attributes),
		"blocks":     nested,
	}
}

func hclAttributes(attrs hclsyntax.Attributes) map[string]any {
	out := make(map[string]any, len(attrs))
	for name, a := range attrs {
		v, known := hclValue(a.Expr)
		refs := []any{}
		for _, t := range a.Expr.Variables() {
			refs = append(refs, traversalString(t))
		}
		out[name] = map[string]any{
			"value":    v,
			"known":    known,
			"line":     a.SrcRange.Start.Line,
			"end_line": a.SrcRange.End.Line,
			"refs":     refs,
		}
	}
	return out
}

// hclValue evaluates expr where it is constant. Tuples and objects are
// evaluated element by element so that the known parts of a partly known
// value survive; unknown parts become null and known is false.
func hclValue(expr hclsyntax.Expression) (any, bool) {
	switch e := expr.(type) {
	case *hclsyntax.TupleConsExpr:
		out := make([]any, len(e.Exprs))
		known := true
		for i, x := range e.Exprs {
			v, k := hclValue(x)
			out[i], known = v, known && k
		}
		return out, known
	case *hclsyntax.ObjectConsExpr:
		out := make(map[string]any, len(e.Items))
		known := true
		for _, item := range e.Items {
			kv, diags := item.KeyExpr.Value(hclEvalContext)
			if diags.HasErrors() || !kv.IsWhollyKnown() || kv.IsNull() || kv.Type() != cty.String {
				known = false
				continue
			}
			v, k := hclValue(item.ValueExpr)
			out[kv.AsString()], known = v, known && k
		}
		return out, known
	case *hclsyntax.TemplateWrapExpr:
		return hclValue(e.Wrapped)
	}
	if !constantExpr(expr) {
		return nil, false
	}
	v, diags := expr.Value(hclEvalContext)
	if diags.HasErrors() {
		return nil, false
	}
	return ctyValue(v)
}

// constantExpr reports whether expr can be evaluated without variables and
// without repetition: for expressions and template loops could build a
// value far larger than the file.
func constantExpr(expr hclsyntax.Expression) bool {
	if len(expr.Variables()) > 0 {
		return false
	}
	ok := true
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		switch n := n.(type) {
		case *hclsyntax.ForExpr, *hclsyntax.TemplateJoinExpr, *hclsyntax.SplatExpr:
			ok = false
		case *hclsyntax.FunctionCallExpr:
			if _, found := hclFuncs[n.Name]; !found {
				ok = false
			}
		}
		return nil
	})
	return ok
}

// ctyValue converts a cty value to JSON-like Go values.
func ctyValue(v cty.Value) (any, bool) {
	if !v.IsKnown() {
		return nil, false
	}
	if v.IsNull() {
		return nil, true
	}
	v, _ = v.Unmark()
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), true
	case t == cty.Bool:
		return v.True(), true
	case t == cty.Number:
		return ctyNumber(v.AsBigFloat()), true
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		out := make([]any, 0, v.LengthInt())
		known := true
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			x, k := ctyValue(ev)
			out, known = append(out, x), known && k
		}
		return out, known
	case t.IsMapType() || t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		known := true
		for it := v.ElementIterator(); it.Next(); {
			kv, ev := it.Element()
			x, k := ctyValue(ev)
			out[kv.AsString()], known = x, known && k
		}
		return out, known
	}
	return nil, false
}

// ctyNumber keeps integers exact and writes other numbers in exponent
// form (never a million digits); infinities become strings, which JSON
// cannot hold.
func ctyNumber(f *big.Float) any {
	if f.IsInf() {
		return f.String()
	}
	if f.IsInt() {
		if i, acc := f.Int64(); acc == big.Exact {
			return int(i)
		}
	}
	return json.Number(f.Text('g', -1))
}

// traversalString writes a reference like aws_s3_bucket.logs.id or
// var.ports[0].
func traversalString(t hcl.Traversal) string {
	var sb strings.Builder
	for _, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			sb.WriteString(s.Name)
		case hcl.TraverseAttr:
			sb.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			switch {
			case !s.Key.IsKnown() || s.Key.IsNull():
				sb.WriteString("[?]")
			case s.Key.Type() == cty.String:
				sb.WriteString("[" + strconv.Quote(s.Key.AsString()) + "]")
			case s.Key.Type() == cty.Number:
				sb.WriteString("[" + s.Key.AsBigFloat().Text('f', -1) + "]")
			default:
				sb.WriteString("[?]")
			}
		case hcl.TraverseSplat:
			sb.WriteString("[*]")
		}
	}
	return sb.String()
}
