package iac

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkLines fails when a line number anywhere in an input document lies
// outside the file: checks report these lines to users.
func checkLines(t *testing.T, v any, lines int, at string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "line" || k == "end_line" {
				if n, ok := e.(int); !ok || n < 1 || n > lines {
					t.Fatalf("%s/%s = %#v, outside lines 1-%d", at, k, e, lines)
				}
				continue
			}
			if k == "lines" {
				for ptr, l := range e.(map[string]any) {
					if n, ok := l.(int); !ok || n < 1 || n > lines {
						t.Fatalf("%s/lines[%q] = %#v, outside lines 1-%d", at, ptr, l, lines)
					}
				}
				continue
			}
			checkLines(t, e, lines, at+"/"+k)
		}
	case []any:
		for _, e := range x {
			checkLines(t, e, lines, at+"/[]")
		}
	}
}

// addSeeds adds the fixtures of one extension, and extra inputs.
func addSeeds(f *testing.F, ext string, extra ...string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "checks", "*", "*."+ext))
	more, _ := filepath.Glob(filepath.Join("testdata", "bad", "*"))
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// fuzzConvert checks one converter on one input: it never panics, it
// either fails or returns a document whose lines are all in the file, and
// scanning the input reports findings on lines of the file only.
func fuzzConvert(t *testing.T, path string, data []byte, conv func(string, []byte) (map[string]any, error)) {
	doc, err := conv(path, data)
	if doc != nil {
		checkLines(t, doc, lineCount(data), "input")
	}
	if err != nil && err.Error() == "" {
		t.Fatal("error without a message")
	}
	s, err := SharedScanner()
	if err != nil {
		t.Fatal(err)
	}
	findings, notes := s.Scan(t.Context(), path, data)
	for _, f := range findings {
		if f.Location.StartLine < 1 || f.Location.StartLine > lineCount(data) || f.Location.EndLine < f.Location.StartLine {
			t.Fatalf("%s finding on lines %d-%d of a %d-line file", f.RuleID, f.Location.StartLine, f.Location.EndLine, lineCount(data))
		}
	}
	for _, n := range notes {
		if n.Path != path || strings.TrimSpace(n.Message) == "" {
			t.Fatalf("note %+v", n)
		}
	}
}

func FuzzTerraformInput(f *testing.F) {
	addSeeds(f, "tf",
		"a = !!!!!!!!!!x\n",
		"a = b ? c : d ? e : f\n",
		"a = [[[[[[[[[[1]]]]]]]]]]\n",
		"resource \"x\" \"y\" {\n  a = \"${\"${1}\"}\"\n}\n",
		"a = 1e99999\nb = -0\nc = 0.1\n",
		"a = <<EOT\nx\r\nEOT\n",
		"a = {\"k\" = 1, (var.x) = 2}\n",
		"a = \"%{ for x in [1] }${x}%{ endfor }\"\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzConvert(t, "main.tf", data, terraformInput)
	})
}

func FuzzKubernetesInput(f *testing.F) {
	addSeeds(f, "yaml",
		"apiVersion: v1\nkind: Pod\nspec: &a {x: *a}\n",
		"apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: p\r\n",
		"apiVersion: v1\rkind: Pod\rmetadata: {name: p}\r",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: [{apiVersion: v1, kind: Pod}]\n",
		"apiVersion: v1\nkind: Pod\n? [a, b]\n: c\n1: 2\n",
		"--- !!binary aGVsbG8=\n",
		"apiVersion: v1\nkind: Pod\nx: .inf\ny: 0x1F\nz: 18446744073709551616\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzConvert(t, "k8s.yaml", data, kubernetesInput)
	})
}

func FuzzDockerfileInput(f *testing.F) {
	addSeeds(f, "Dockerfile",
		"FROM a\nRUN <<EOF\nx\nEOF\n",
		"FROM a\nONBUILD ONBUILD RUN x\n",
		"# escape=`\nFROM a\nRUN x `\n  y\n",
		"FROM a\nENV A\n",
		"FROM ${X:-y}:${Z:?err}\n",
		"\ufeffFROM a\r\nUSER root\r\n",
		"FROM a\nRUN x \\\n\n  y\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzConvert(t, "Dockerfile", data, dockerfileInput)
	})
}
