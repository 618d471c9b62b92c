package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
)

// MaxDockerfileSize is the largest Dockerfile Parse accepts.
const MaxDockerfileSize = 1 << 20

// maxInstructions bounds the number of instructions of one Dockerfile.
const maxInstructions = 4096

// Supported names the instructions of the Dockerfile subset, for error
// messages and documentation.
const Supported = "FROM, COPY, ADD (local files and archives), ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, ENTRYPOINT, CMD"

// Dockerfile is a parsed Dockerfile: its directives, the ARG instructions
// before the first FROM (usable in FROM lines) and its stages.
type Dockerfile struct {
	// Name is what errors call the file ("Dockerfile", "build/Dockerfile").
	Name string
	// Directives are the parser directives (syntax, escape, check).
	Directives map[string]string
	// Escape is the escape character: '\\' or '`'.
	Escape rune
	// GlobalArgs are the ARG instructions before the first FROM.
	GlobalArgs []Instruction
	// Stages in file order.
	Stages []Stage
}

// Stage is one FROM and the instructions that follow it.
type Stage struct {
	// Index is the stage's position, from 0.
	Index int
	// Name is the lowercased AS name, or "".
	Name string
	// From is the FROM instruction (Args[0] is the unexpanded base).
	From Instruction
	// Instructions after FROM.
	Instructions []Instruction
}

// Instruction is one logical line of a Dockerfile, split but not yet
// expanded: expansion needs the build's variables.
type Instruction struct {
	// Line is the 1-based line the instruction starts on.
	Line int
	// Cmd is the lowercased instruction name.
	Cmd string
	// Flags are the --name=value options (COPY, ADD, FROM).
	Flags map[string]string
	// Args is the rest of the line: for JSON (exec) form the decoded array,
	// else one element holding the raw text.
	Args []string
	// JSON reports the exec (JSON array) form.
	JSON bool
	// Original is the instruction's text as written (continuations joined).
	Original string
}

// String is the instruction as recorded in image history.
func (in Instruction) String() string { return in.Original }

var directiveRe = regexp.MustCompile(`^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$`)

// knownDirectives are honoured (escape) or recorded (syntax, check).
var knownDirectives = map[string]bool{"syntax": true, "escape": true, "check": true}

// flagsOf lists the flags each instruction accepts.
var flagsOf = map[string]map[string]bool{
	"from": {"platform": true},
	"copy": {"from": true, "chown": true, "chmod": true},
	"add":  {"chown": true, "chmod": true},
}

// unsupported instructions of the Dockerfile language, with a hint each.
var unsupported = map[string]string{
	"run":         "Rampart builds images without running containers; run the command as a `run` step of the pipeline before the build-image step and COPY its output",
	"shell":       "SHELL only matters to RUN, which needs a container; run commands as pipeline steps",
	"volume":      "declare volumes where the image is deployed",
	"healthcheck": "declare health checks where the image is deployed",
	"stopsignal":  "declare the stop signal where the image is deployed",
	"onbuild":     "triggers would run in other builds",
	"maintainer":  "use LABEL org.opencontainers.image.authors=… instead",
}

// lineError is an Invalid error naming the file and line.
func lineError(file string, line int, format string, args ...any) error {
	return apperr.E(apperr.Invalid, "%s:%d: %s", file, line, fmt.Sprintf(format, args...))
}

// lineErrorKind is lineError with the kind of a cause (a registry's
// refusal stays Unauthenticated, a missing base NotFound).
func lineErrorKind(cause error, file string, line int, format string, args ...any) error {
	k := apperr.KindOf(cause)
	if k == apperr.Internal {
		k = apperr.Unavailable
	}
	return &apperr.Error{Kind: k, Msg: fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)), Err: cause}
}

// Parse reads a Dockerfile of the supported subset. name is used in error
// messages. Every error is Invalid and names the line.
func Parse(name string, data []byte) (*Dockerfile, error) {
	if name == "" {
		name = "Dockerfile"
	}
	if len(data) > MaxDockerfileSize {
		return nil, apperr.E(apperr.TooLarge, "%s: larger than %d bytes", name, MaxDockerfileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	df := &Dockerfile{Name: name, Directives: map[string]string{}, Escape: '\\'}
	for i, l := range lines {
		if !utf8.ValidString(l) {
			return nil, lineError(name, i+1, "not valid UTF-8")
		}
		if strings.ContainsRune(l, 0) {
			return nil, lineError(name, i+1, "contains a NUL byte")
		}
	}

	// Parser directives: only at the very top, before any other line.
	i := 0
	for ; i < len(lines); i++ {
		m := directiveRe.FindStringSubmatch(lines[i])
		if m == nil {
			break
		}
		key := strings.ToLower(m[1])
		if !knownDirectives[key] {
			break
		}
		if _, dup := df.Directives[key]; dup {
			return nil, lineError(name, i+1, "parser directive %q given twice", key)
		}
		df.Directives[key] = m[2]
		if key == "escape" {
			switch m[2] {
			case `\`:
				df.Escape = '\\'
			case "`":
				df.Escape = '`'
			default:
				return nil, lineError(name, i+1, "escape directive must be \\ or `, not %q", m[2])
			}
		}
	}

	var stage *Stage
	count := 0
	for i < len(lines) {
		start := i
		raw, next := logicalLine(lines, i, df.Escape)
		i = next
		if raw == "" {
			continue
		}
		count++
		if count > maxInstructions {
			return nil, lineError(name, start+1, "more than %d instructions", maxInstructions)
		}
		in, err := parseInstruction(name, start+1, raw)
		if err != nil {
			return nil, err
		}
		switch {
		case in.Cmd == "from":
			df.Stages = append(df.Stages, Stage{Index: len(df.Stages), From: in})
			stage = &df.Stages[len(df.Stages)-1]
			if len(in.Args) == 3 {
				stage.Name = strings.ToLower(in.Args[2])
				for _, s := range df.Stages[:len(df.Stages)-1] {
					if s.Name == stage.Name {
						return nil, lineError(name, in.Line, "stage name %q is already used on line %d", stage.Name, s.From.Line)
					}
				}
			}
		case stage == nil && in.Cmd == "arg":
			df.GlobalArgs = append(df.GlobalArgs, in)
		case stage == nil:
			return nil, lineError(name, in.Line, "%s before the first FROM (only ARG may come before FROM)", strings.ToUpper(in.Cmd))
		default:
			stage.Instructions = append(stage.Instructions, in)
		}
	}
	if len(df.Stages) == 0 {
		return nil, apperr.E(apperr.Invalid, "%s: no FROM instruction", name)
	}
	return df, nil
}

// logicalLine joins the physical lines from i on into one instruction:
// comment and blank lines are skipped, a line ending with the escape
// character continues on the next. It returns "" at a blank or comment
// line, and the index of the next unread line.
func logicalLine(lines []string, i int, esc rune) (string, int) {
	var b strings.Builder
	inside := false
	for ; i < len(lines); i++ {
		l := lines[i]
		t := strings.TrimLeft(l, " \t")
		if t == "" || strings.HasPrefix(t, "#") {
			if !inside {
				return "", i + 1
			}
			continue // comments and blank lines inside a continuation
		}
		trimmed := strings.TrimRight(l, " \t")
		if strings.HasSuffix(trimmed, string(esc)) {
			b.WriteString(strings.TrimSuffix(trimmed, string(esc)))
			inside = true
			continue
		}
		b.WriteString(l)
		return strings.TrimSpace(b.String()), i + 1
	}
	return strings.TrimSpace(b.String()), i
}

var stageNameRe = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)

func parseInstruction(file string, line int, raw string) (Instruction, error) {
	word, rest, _ := strings.Cut(raw, " ")
	if w, r, ok := strings.Cut(raw, "\t"); ok && len(w) < len(word) {
		word, rest = w, r
	}
	cmd := strings.ToLower(word)
	rest = strings.TrimSpace(rest)
	in := Instruction{Line: line, Cmd: cmd, Original: strings.ToUpper(word)}
	if rest != "" {
		in.Original += " " + rest
	}
	if hint, ok := unsupported[cmd]; ok {
		return in, lineError(file, line, "%s is not supported: %s (supported instructions: %s)", strings.ToUpper(cmd), hint, Supported)
	}
	switch cmd {
	case "from", "copy", "add", "env", "arg", "workdir", "user", "expose", "label", "entrypoint", "cmd":
	default:
		return in, lineError(file, line, "unknown instruction %q (supported instructions: %s)", word, Supported)
	}

	// Leading --flags.
	if allowed, ok := flagsOf[cmd]; ok {
		for strings.HasPrefix(rest, "--") {
			tok, after, _ := strings.Cut(rest, " ")
			if t, a, ok := strings.Cut(rest, "\t"); ok && len(t) < len(tok) {
				tok, after = t, a
			}
			k, v, hasValue := strings.Cut(strings.TrimPrefix(tok, "--"), "=")
			k = strings.ToLower(k)
			if !allowed[k] {
				return in, lineError(file, line, "%s does not support the flag --%s (supported: %s)", strings.ToUpper(cmd), k, flagList(allowed))
			}
			if !hasValue || v == "" {
				return in, lineError(file, line, "flag --%s needs a value", k)
			}
			if in.Flags == nil {
				in.Flags = map[string]string{}
			}
			if _, dup := in.Flags[k]; dup {
				return in, lineError(file, line, "flag --%s given twice", k)
			}
			in.Flags[k] = v
			rest = strings.TrimSpace(after)
		}
	}

	switch cmd {
	case "from":
		f := strings.Fields(rest)
		switch {
		case len(f) == 1:
		case len(f) == 3 && strings.EqualFold(f[1], "as"):
			if !stageNameRe.MatchString(strings.ToLower(f[2])) {
				return in, lineError(file, line, "invalid stage name %q (letters, digits, '_', '.', '-'; starting with a letter)", f[2])
			}
		default:
			return in, lineError(file, line, "FROM wants an image and an optional AS name: FROM [--platform=…] IMAGE [AS NAME]")
		}
		in.Args = f
		return in, nil
	case "copy", "add", "entrypoint", "cmd":
		if strings.HasPrefix(rest, "[") {
			var arr []string
			if err := json.Unmarshal([]byte(rest), &arr); err == nil {
				in.JSON, in.Args = true, arr
			} else if cmd == "copy" || cmd == "add" {
				return in, lineError(file, line, "%s in JSON form must be an array of strings", strings.ToUpper(cmd))
			}
		}
		if !in.JSON {
			in.Args = []string{rest}
		}
		if cmd == "copy" || cmd == "add" {
			if in.JSON && len(in.Args) < 2 || !in.JSON && len(strings.Fields(rest)) < 2 {
				return in, lineError(file, line, "%s wants at least one source and a destination", strings.ToUpper(cmd))
			}
		}
		if (cmd == "entrypoint" || cmd == "cmd") && !in.JSON && rest == "" {
			return in, lineError(file, line, "%s wants a command", strings.ToUpper(cmd))
		}
		return in, nil
	default:
		if rest == "" {
			return in, lineError(file, line, "%s wants arguments", strings.ToUpper(cmd))
		}
		in.Args = []string{rest}
		return in, nil
	}
}

func flagList(allowed map[string]bool) string {
	var out []string
	for _, k := range []string{"from", "chown", "chmod", "platform"} {
		if allowed[k] {
			out = append(out, "--"+k)
		}
	}
	return strings.Join(out, ", ")
}
