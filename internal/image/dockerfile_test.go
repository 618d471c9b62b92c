package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
)

func TestParse_Structure(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\n# escape=`\n\nARG GO=1.26\n# a comment\nFROM golang:${GO} AS Build\nCOPY --from=x --chown=1:2 [\"a b\", \"/c/\"]\nENV A=1 `\n  # comment inside a continuation\n\n  B=2\nfrom scratch\nCMD echo hi\nENTRYPOINT [\"/app\"]\n"
	df, err := Parse("Dockerfile", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if df.Escape != '`' || df.Directives["syntax"] != "docker/dockerfile:1" {
		t.Errorf("directives %v escape %q", df.Directives, df.Escape)
	}
	if len(df.GlobalArgs) != 1 || df.GlobalArgs[0].Args[0] != "GO=1.26" || df.GlobalArgs[0].Line != 4 {
		t.Errorf("global args %+v", df.GlobalArgs)
	}
	if len(df.Stages) != 2 || df.Stages[0].Name != "build" || df.Stages[1].From.Line != 12 {
		t.Fatalf("stages %+v", df.Stages)
	}
	want := []Instruction{
		{Line: 7, Cmd: "copy", Flags: map[string]string{"from": "x", "chown": "1:2"}, Args: []string{"a b", "/c/"}, JSON: true, Original: `COPY --from=x --chown=1:2 ["a b", "/c/"]`},
		{Line: 8, Cmd: "env", Args: []string{"A=1   B=2"}, Original: "ENV A=1   B=2"},
	}
	if diff := cmp.Diff(want, df.Stages[0].Instructions); diff != "" {
		t.Errorf("instructions (-want +got):\n%s", diff)
	}
	got := df.Stages[1].Instructions
	if got[0].JSON || got[0].Args[0] != "echo hi" || !got[1].JSON || got[1].Args[0] != "/app" {
		t.Errorf("CMD/ENTRYPOINT forms: %+v", got)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"RUN", "FROM scratch\n\nRUN apt-get install -y curl\n", "Dockerfile:3: RUN is not supported"},
		{"RUN names the subset", "FROM scratch\nRUN x\n", "supported instructions: FROM, COPY, ADD (local files and archives), ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, ENTRYPOINT, CMD"},
		{"continued RUN names its first line", "FROM scratch\nCOPY a /a\nRUN make \\\n  && make install\n", "Dockerfile:3: RUN"},
		{"unknown instruction", "FROM scratch\nFROBNICATE x\n", `Dockerfile:2: unknown instruction "FROBNICATE"`},
		{"SHELL", "FROM scratch\nSHELL [\"/bin/bash\"]\n", "Dockerfile:2: SHELL is not supported"},
		{"HEALTHCHECK", "FROM scratch\nHEALTHCHECK CMD true\n", "Dockerfile:2: HEALTHCHECK is not supported"},
		{"no FROM", "# nothing\n", "Dockerfile: no FROM instruction"},
		{"instruction before FROM", "ENV A=1\nFROM scratch\n", "Dockerfile:1: ENV before the first FROM"},
		{"bad FROM", "FROM a b c d\n", "Dockerfile:1: FROM wants an image"},
		{"bad stage name", "FROM scratch AS 1st\n", `Dockerfile:1: invalid stage name "1st"`},
		{"duplicate stage", "FROM scratch AS a\nFROM scratch AS A\n", `Dockerfile:2: stage name "a" is already used on line 1`},
		{"unknown flag", "FROM scratch\nCOPY --link a /a\n", "Dockerfile:2: COPY does not support the flag --link (supported: --from, --chown, --chmod)"},
		{"ADD --from", "FROM scratch\nADD --from=x a /a\n", "Dockerfile:2: ADD does not support the flag --from"},
		{"flag without value", "FROM scratch\nCOPY --chown a /a\n", "Dockerfile:2: flag --chown needs a value"},
		{"COPY one argument", "FROM scratch\nCOPY onlyone\n", "Dockerfile:2: COPY wants at least one source and a destination"},
		{"COPY bad JSON", "FROM scratch\nCOPY [\"a\", 1]\n", "Dockerfile:2: COPY in JSON form must be an array of strings"},
		{"empty ENV", "FROM scratch\nENV\n", "Dockerfile:2: ENV wants arguments"},
		{"bad escape directive", "# escape=x\nFROM scratch\n", "Dockerfile:1: escape directive must be"},
		{"duplicate directive", "# escape=`\n# escape=`\nFROM scratch\n", `Dockerfile:2: parser directive "escape" given twice`},
		{"invalid UTF-8", "FROM scratch\nLABEL a=\xff\n", "Dockerfile:2: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("Dockerfile", []byte(tt.src))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !apperr.Is(err, apperr.Invalid) {
				t.Errorf("kind %v, want invalid", apperr.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := Parse("Dockerfile", []byte("FROM scratch\n"+strings.Repeat("#", MaxDockerfileSize))); !apperr.Is(err, apperr.TooLarge) {
		t.Errorf("oversized Dockerfile: %v, want too_large", err)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "EMPTY": "", "P": "/usr/bin"}
	ex := expander{esc: '\\', lookup: mapLookup(vars)}
	tests := []struct{ in, want string }{
		{"$A", "alpha"},
		{"${A}-x", "alpha-x"},
		{"pre${A}post", "prealphapost"},
		{"$UNSET", ""},
		{"${UNSET:-def}", "def"},
		{"${EMPTY:-def}", "def"},
		{"${EMPTY-def}", ""},
		{"${UNSET-def}", "def"},
		{"${A:+set}", "set"},
		{"${EMPTY:+set}", ""},
		{"${EMPTY+set}", "set"},
		{"${UNSET:-${A:-no}}", "alpha"},
		{"'$A'", "$A"},
		{`"$A b"`, "alpha b"},
		{`\$A`, "$A"},
		{`"\$A"`, "$A"},
		{"$", "$"},
		{"cost: $5", "cost: $5"},
		{"$P:/x", "/usr/bin:/x"},
	}
	for _, tt := range tests {
		got, err := ex.word(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("word(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	words, err := ex.words(`a "b c" 'd e' ${A}f`)
	if diff := cmp.Diff([]string{"a", "b c", "d e", "alphaf"}, words); err != nil || diff != "" {
		t.Errorf("words: %v (-want +got):\n%s", err, diff)
	}
	for _, bad := range []string{"${A", "${}", "${A:x}", "'open", `"open`, "${UNSET:?is required}", strings.Repeat("${UNSET:-", 20) + "x" + strings.Repeat("}", 20)} {
		if _, err := ex.word(bad); err == nil {
			t.Errorf("word(%q) succeeded, want an error", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"FROM scratch\nCOPY a /a\n",
		"# escape=`\nFROM a AS b\nENV X=1 `\n Y=2\nCOPY --from=b [\"/x\", \"/y\"]\n",
		"ARG A=1\nFROM ${A:-x}\nLABEL a=\"b c\" d='e'\nEXPOSE 80/tcp 53/udp\nCMD [\"x\"]\nENTRYPOINT x y\n",
		"FROM scratch\nRUN x\n",
		"FROM scratch\nWORKDIR ${A:+${B:-c}}\nUSER a:b\nADD --chmod=755 x /y\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		df, err := Parse("Dockerfile", data)
		if err != nil {
			if apperr.KindOf(err) == apperr.Internal {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if len(df.Stages) == 0 {
			t.Fatal("parsed without a stage")
		}
		ex := expander{esc: df.Escape, lookup: func(string) (string, bool) { return "v", true }}
		for _, s := range df.Stages {
			for _, in := range s.Instructions {
				if in.Line < 1 || len(in.Args) == 0 && !in.JSON {
					t.Fatalf("instruction %+v", in)
				}
				for _, a := range in.Args {
					ex.words(a)
					ex.word(a)
				}
			}
		}
	})
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"$A", "${A:-b}", `"a $b" 'c'`, `\$x`, "${A:?m}", "${A:+${B}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ex := expander{esc: '\\', lookup: func(n string) (string, bool) { return strings.Repeat("x", len(n)), len(n)%2 == 0 }}
		if w, err := ex.word(s); err == nil && len(w) > maxExpansion {
			t.Fatalf("expansion of %d bytes", len(w))
		}
		ex.words(s)
	})
}

func FuzzDockerignore(f *testing.F) {
	for _, s := range []string{"*.log\n!keep.log\n", "**/tmp\n# c\n/abs\n", "[a-\n"} {
		f.Add(s, "a/b/keep.log")
	}
	f.Fuzz(func(t *testing.T, patterns, p string) {
		ig, err := parseDockerignore([]byte(patterns))
		if err != nil {
			return
		}
		ig.ignored(p)
	})
}
