package iac

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// maxOnbuild bounds ONBUILD nesting: the parser recurses once per ONBUILD
// on a line, and BuildKit refuses more than one anyway.
const maxOnbuild = 8

// dockerfileInput turns a Dockerfile into the input document described in
// doc.go.
func dockerfileInput(path string, data []byte) (map[string]any, error) {
	if err := checkOnbuildNesting(data); err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, dockerfileError(err)
	}
	lex := shell.NewLex(res.EscapeToken)
	globalArgs := map[string]string{}
	stageNames := map[string]bool{}
	instructions := []any{}
	stages := []any{}
	var stage map[string]any
	for _, node := range res.AST.Children {
		in := dockerInstruction(node, node.StartLine, node.EndLine, lex)
		switch in["cmd"] {
		case "from":
			stage = dockerStage(node, in, len(stages), lex, globalArgs, stageNames)
			stages = append(stages, stage)
		case "arg":
			if stage == nil {
				for _, v := range in["vars"].([]any) {
					kv := v.(map[string]any)
					if kv["has_value"] == true && len(kv["refs"].([]any)) == 0 {
						globalArgs[kv["key"].(string)] = kv["value"].(string)
					}
				}
			}
		}
		in["stage"] = -1
		if stage != nil {
			in["stage"] = stage["index"]
			stage["instructions"] = append(stage["instructions"].([]any), in)
			stage["end_line"] = node.EndLine
		}
		instructions = append(instructions, in)
	}
	if len(stages) > 0 {
		stages[len(stages)-1].(map[string]any)["last"] = true
	}
	return map[string]any{
		"kind":         "dockerfile",
		"path":         path,
		"instructions": instructions,
		"stages":       stages,
	}, nil
}

// checkOnbuildNesting refuses lines that chain ONBUILD deeper than
// maxOnbuild before the parser recurses into them.
func checkOnbuildNesting(data []byte) error {
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := 0
		for _, f := range bytes.Fields(line) {
			if !bytes.EqualFold(f, []byte("onbuild")) {
				break
			}
			if n++; n > maxOnbuild {
				return fmt.Errorf("line %d: ONBUILD nested more than %d times", i+1, maxOnbuild)
			}
		}
	}
	return nil
}

// dockerfileError keeps the parser's message and the line it names.
func dockerfileError(err error) error {
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		if line := loc.Locations[0][0].Start.Line; line > 0 {
			return fmt.Errorf("line %d: %s", line, loc.Unwrap())
		}
	}
	return err
}

// dockerInstruction describes one instruction node on lines start to end
// (the trigger of an ONBUILD has no lines of its own).
func dockerInstruction(node *parser.Node, start, end int, lex *shell.Lex) map[string]any {
	cmd := strings.ToLower(node.Value)
	args := []any{}
	words := []string{}
	for n := node.Next; n != nil; n = n.Next {
		args = append(args, n.Value)
		words = append(words, n.Value)
	}
	flags := make([]any, len(node.Flags))
	for i, f := range node.Flags {
		flags[i] = f
	}
	heredocs := make([]any, len(node.Heredocs))
	for i, h := range node.Heredocs {
		heredocs[i] = map[string]any{"name": h.Name, "content": h.Content}
	}
	in := map[string]any{
		"cmd":      cmd,
		"line":     start,
		"end_line": end,
		"original": node.Original,
		"flags":    flags,
		"args":     args,
		"value":    strings.Join(words, " "),
		"json":     node.Attributes["json"],
		"heredocs": heredocs,
	}
	switch cmd {
	case "env", "label":
		vars, pairs, text := []any{}, []any{}, []string{}
		// The parser chains each pair as key, value, separator.
		for n := node.Next; n != nil && n.Next != nil; {
			vars = append(vars, dockerVar(n.Value, n.Next.Value, true, lex))
			pairs, text = append(pairs, n.Value+"="+n.Next.Value), append(text, n.Value+"="+n.Next.Value)
			n = n.Next.Next
			if n != nil {
				n = n.Next
			}
		}
		in["vars"], in["args"], in["value"] = vars, pairs, strings.Join(text, " ")
	case "arg":
		vars := []any{}
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			vars = append(vars, dockerVar(k, v, ok, lex))
		}
		in["vars"] = vars
	case "onbuild":
		if node.Next != nil && len(node.Next.Children) > 0 {
			sub := node.Next.Children[0]
			trigger := dockerInstruction(sub, start, end, lex)
			in["trigger"], in["args"], in["value"] = trigger, []any{sub.Original}, sub.Original
		}
	}
	return in
}

// dockerVar describes a KEY=value pair with its value unquoted and the
// variables it refers to.
func dockerVar(key, raw string, hasValue bool, lex *shell.Lex) map[string]any {
	value := raw
	refs := []any{}
	if !utf8.ValidString(raw) {
		// BuildKit's lexer prints (to stderr) what it cannot decode.
		return map[string]any{"key": key, "value": value, "has_value": hasValue, "refs": refs}
	}
	if res, err := lex.ProcessWordWithMatches(raw, emptyEnv{}); err == nil {
		value = res.Result
		for name := range res.Unmatched {
			refs = append(refs, name)
		}
		slices.SortFunc(refs, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	}
	if len(refs) > 0 {
		value = raw
	}
	return map[string]any{"key": key, "value": value, "has_value": hasValue, "refs": refs}
}

// dockerStage describes the stage a FROM instruction starts. The base
// image has the defaults of ARGs declared before the first FROM
// substituted; when a variable is left unresolved base is kept as written
// and base_known is false.
func dockerStage(node *parser.Node, from map[string]any, index int, lex *shell.Lex, globalArgs map[string]string, stageNames map[string]bool) map[string]any {
	var words []string
	for n := node.Next; n != nil; n = n.Next {
		words = append(words, n.Value)
	}
	base, name := "", ""
	if len(words) > 0 {
		base = words[0]
	}
	if len(words) >= 3 && strings.EqualFold(words[1], "as") {
		name = strings.ToLower(words[2])
	}
	// BuildKit's lexer prints (to stderr) what it cannot decode: leave
	// such bases as written.
	known := false
	if utf8.ValidString(base) {
		if res, err := lex.ProcessWordWithMatches(base, mapEnv(globalArgs)); err == nil && len(res.Unmatched) == 0 {
			base, known = res.Result, true
		}
	}
	platform := ""
	for _, f := range node.Flags {
		if v, ok := strings.CutPrefix(f, "--platform="); ok {
			platform = v
		}
	}
	st := map[string]any{
		"index":        index,
		"name":         name,
		"base":         base,
		"base_known":   known,
		"base_stage":   stageNames[strings.ToLower(base)],
		"base_scratch": strings.EqualFold(base, "scratch"),
		"platform":     platform,
		"line":         node.StartLine,
		"end_line":     node.EndLine,
		"last":         false,
		"instructions": []any{},
	}
	if name != "" {
		stageNames[name] = true
	}
	return st
}

type emptyEnv struct{}

func (emptyEnv) Get(string) (string, bool) { return "", false }
func (emptyEnv) Keys() []string            { return nil }

type mapEnv map[string]string

func (m mapEnv) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m mapEnv) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
