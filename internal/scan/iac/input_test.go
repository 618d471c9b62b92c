package iac

import (
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// roundTrip gives a document the shape Rego sees: JSON values only.
func roundTrip(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal input: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not an object", p, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: %v is not an array that long", p, v)
			}
			v = a[k]
		}
	}
	return v
}

// TestTerraformInput: constants are evaluated, variables are marked
// unknown without hiding the known parts, and every block and attribute
// carries its lines and references.
func TestTerraformInput(t *testing.T) {
	src := `region = "eu-west-1"

resource "aws_security_group" "web" {
  cidrs  = ["0.0.0.0/0", var.office]
  tags   = { Name = "web", Owner = local.team }
  policy = jsonencode({ Statement = [{ Action = "*" }] })
  ports  = [for p in var.ports : p]
  port   = 22
  ratio  = 0.5
  huge   = 1e400
  upper  = upper("x${"y"}")

  ingress {
    from_port = 443
  }
}
`
	doc, err := terraformInput("main.tf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	blk := doc["blocks"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
	if v := blk["huge"].(map[string]any)["value"]; v != json.Number("1e+400") {
		t.Errorf("1e400 = %#v, want the exact number", v)
	}
	delete(blk, "huge") // beyond float64, as roundTrip reads numbers
	doc = roundTrip(t, doc)
	attr := func(name string) map[string]any {
		return get(t, doc, "blocks", 0, "attributes", name).(map[string]any)
	}
	for _, tt := range []struct {
		name  string
		value any
		known bool
		line  float64
		refs  []any
	}{
		{"cidrs", []any{"0.0.0.0/0", nil}, false, 4, []any{"var.office"}},
		{"tags", map[string]any{"Name": "web", "Owner": nil}, false, 5, []any{"local.team"}},
		{"policy", `{"Statement":[{"Action":"*"}]}`, true, 6, []any{}},
		{"ports", nil, false, 7, []any{"var.ports"}},
		{"port", 22.0, true, 8, []any{}},
		{"ratio", 0.5, true, 9, []any{}},
		{"upper", "XY", true, 11, []any{}},
	} {
		a := attr(tt.name)
		got := map[string]any{"value": a["value"], "known": a["known"], "line": a["line"], "refs": a["refs"]}
		want := map[string]any{"value": tt.value, "known": tt.known, "line": tt.line, "refs": tt.refs}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("attribute %s (-want +got):\n%s", tt.name, diff)
		}
	}
	block := get(t, doc, "blocks", 0).(map[string]any)
	if diff := cmp.Diff(map[string]any{
		"type": "resource", "labels": []any{"aws_security_group", "web"}, "address": "aws_security_group.web",
		"line": 3.0, "end_line": 16.0,
	}, map[string]any{
		"type": block["type"], "labels": block["labels"], "address": block["address"], "line": block["line"], "end_line": block["end_line"],
	}); diff != "" {
		t.Errorf("block (-want +got):\n%s", diff)
	}
	nested := get(t, block, "blocks", 0).(map[string]any)
	if nested["type"] != "ingress" || nested["line"] != 13.0 || nested["end_line"] != 15.0 || get(t, nested, "attributes", "from_port", "value") != 443.0 {
		t.Errorf("nested block = %v", nested)
	}
	if get(t, doc, "attributes", "region", "value") != "eu-west-1" {
		t.Errorf("top-level attributes = %v", doc["attributes"])
	}
}

// TestKubernetesInput: only Kubernetes objects become documents, lists
// are unpacked, aliases and merge keys resolve, YAML 1.1 booleans read as
// Kubernetes reads them, and lines are keyed by JSON pointer.
func TestKubernetesInput(t *testing.T) {
	src := `# not an object
name: ci
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: a
    namespace: shop
    labels: &labels
      app.kubernetes.io/name: a
  spec:
    hostNetwork: yes
    quoted: "yes"
    selector: *labels
    <<: {extra: 1}
    containers:
    - name: app
      image: app:1.0
- apiVersion: v1
  kind: Service
  metadata:
    name: b
`
	doc, err := kubernetesInput("all.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	doc = roundTrip(t, doc)
	docs := doc["documents"].([]any)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want the 2 items of the List", len(docs))
	}
	pod := docs[0].(map[string]any)
	wantSpec := map[string]any{
		"hostNetwork": true,
		"quoted":      "yes",
		"selector":    map[string]any{"app.kubernetes.io/name": "a"},
		"extra":       1.0,
		"containers":  []any{map[string]any{"name": "app", "image": "app:1.0"}},
	}
	if diff := cmp.Diff(wantSpec, get(t, pod, "object", "spec")); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if pod["resource"] != "Pod/shop/a" || pod["line"] != 7.0 || pod["end_line"] != 21.0 || pod["index"] != 0.0 {
		t.Errorf("document = resource %v, lines %v-%v, index %v", pod["resource"], pod["line"], pod["end_line"], pod["index"])
	}
	lines := pod["lines"].(map[string]any)
	for ptr, want := range map[string]float64{
		"":                    7,
		"/metadata/namespace": 11,
		"/metadata/labels/app.kubernetes.io~1name": 13,
		"/spec/hostNetwork":                        15,
		"/spec/containers/0":                       20,
		"/spec/containers/0/image":                 21,
	} {
		if lines[ptr] != want {
			t.Errorf("lines[%q] = %v, want %v", ptr, lines[ptr], want)
		}
	}
	if docs[1].(map[string]any)["resource"] != "Service/b" {
		t.Errorf("second document = %v", docs[1])
	}

	none, err := kubernetesInput("ci.yaml", []byte("on: push\njobs: {}\n"))
	if none != nil || err != nil {
		t.Errorf("YAML without objects = %v, %v; want nothing", none, err)
	}
}

// TestDockerfileInput: instructions keep their lines and flags, ENV and
// ARG pairs are unquoted, and each stage knows its base with the global
// ARGs substituted.
func TestDockerfileInput(t *testing.T) {
	src := `# syntax=docker/dockerfile:1
ARG GO=1.22
FROM --platform=$BUILDPLATFORM golang:${GO} AS build
ENV A="x y" B=$GO
RUN --mount=type=cache,target=/root/.cache \
    go build ./...
FROM build AS test
FROM ${BASE}
`
	doc, err := dockerfileInput("Dockerfile", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	doc = roundTrip(t, doc)
	stages := doc["stages"].([]any)
	type stage struct {
		Name, Base                  string
		Known, FromStage, Last      bool
		Line, EndLine, Instructions float64
	}
	var got []stage
	for _, s := range stages {
		m := s.(map[string]any)
		got = append(got, stage{
			m["name"].(string), m["base"].(string), m["base_known"].(bool), m["base_stage"].(bool), m["last"].(bool),
			m["line"].(float64), m["end_line"].(float64), float64(len(m["instructions"].([]any))),
		})
	}
	want := []stage{
		{"build", "golang:1.22", true, false, false, 3, 6, 3},
		{"test", "build", true, true, false, 7, 7, 1},
		{"", "${BASE}", false, false, true, 8, 8, 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	run := get(t, doc, "instructions", 3).(map[string]any)
	if run["cmd"] != "run" || run["line"] != 5.0 || run["end_line"] != 6.0 || run["stage"] != 0.0 ||
		!cmp.Equal(run["flags"], []any{"--mount=type=cache,target=/root/.cache"}) {
		t.Errorf("RUN = %v", run)
	}
	wantVars := []any{
		map[string]any{"key": "A", "value": "x y", "has_value": true, "refs": []any{}},
		map[string]any{"key": "B", "value": "$GO", "has_value": true, "refs": []any{"GO"}},
	}
	if diff := cmp.Diff(wantVars, get(t, doc, "instructions", 2, "vars")); diff != "" {
		t.Errorf("ENV vars (-want +got):\n%s", diff)
	}
	if get(t, doc, "instructions", 0, "stage") != -1.0 {
		t.Errorf("global ARG has stage %v, want -1", get(t, doc, "instructions", 0, "stage"))
	}
}

// TestDockerfileInput_InvalidUTF8: bytes that are not UTF-8 are kept as
// they are, and nothing is printed to stderr (BuildKit's word lexer would
// print them there).
func TestDockerfileInput_InvalidUTF8(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	doc, err := dockerfileInput("Dockerfile", []byte("ARG X=\xff\nFROM a\xfe:1\nENV A=\xff\n"))
	os.Stderr = stderr
	w.Close()
	printed, _ := io.ReadAll(r)
	if err != nil || len(printed) > 0 {
		t.Errorf("err %v, printed %q", err, printed)
	}
	st := doc["stages"].([]any)[0].(map[string]any)
	if st["base"] != "a\xfe:1" || st["base_known"] != false {
		t.Errorf("stage = %v", st)
	}
}
