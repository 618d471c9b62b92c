package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse_Smallest(t *testing.T) {
	d, err := Parse([]byte(`jobs: {test: {steps: [{run: echo hello}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.On.Push == nil || d.On.PullRequest != nil || d.On.Manual {
		t.Errorf("triggers %+v; want push only", d.On)
	}
	want := []*Job{{Name: "test", Base: "test", Timeout: DefaultTimeout, Env: map[string]string{}, Line: 1,
		Steps: []Step{{Name: "echo hello", Type: StepRun, Run: "echo hello", Line: 1}}}}
	if diff := cmp.Diff(want, d.Jobs, cmp.AllowUnexported(Job{})); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
}

const full = `on:
  push:
    branches: [main, "release/*"]
    paths: ["src/**"]
  pull_request:
    branches: [main]
  manual: true
  schedule:
    - cron: "0 3 * * *"
env:
  GLOBAL: "1"
stages: [build, test, release]
jobs:
  build:
    stage: build
    steps:
      - run: make
      - build-image:
          tag: app:${{ matrix.x }}
          build-args: {VERSION: "1"}
  test:
    stage: test
    matrix:
      go: ["1.25", "1.26"]
      os: [linux]
    timeout: 10m
    limits: {cpus: "0.5", memory: 256Mi, pids: "64", disk: 64Mi, log: 1Mi}
    env: {GO: "${{ matrix.go }}"}
    secrets: {TOKEN: ci/token}
    artifacts: [out/report.xml]
    caches: [{key: gomod, paths: [.cache/go]}]
    steps:
      - name: unit
        run: go${{ matrix.go }} test ./...
        timeout: 5m
      - scan: {path: ., fail-on: high}
        if: event == 'pull_request'
  release:
    stage: release
    if: branch == 'main' && success()
    executor: host
    steps:
      - push-image: {image: app, to: registry/app:1}
      - sign: {image: registry/app:1}
      - sbom: {image: registry/app:1}
`

func TestParse_Full(t *testing.T) {
	d, err := Parse([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range d.Jobs {
		names = append(names, j.Name)
	}
	wantNames := []string{"build", "test (go=1.25, os=linux)", "test (go=1.26, os=linux)", "release"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("jobs (-want +got):\n%s", diff)
	}
	rel := d.Job("release")
	if diff := cmp.Diff([]string{"build", "test (go=1.25, os=linux)", "test (go=1.26, os=linux)"}, rel.Needs); diff != "" {
		t.Errorf("release needs (-want +got):\n%s", diff)
	}
	tj := d.Job("test (go=1.26, os=linux)")
	if tj.Steps[0].Run != "go1.26 test ./..." || tj.Env["GO"] != "1.26" || tj.Timeout != 10*time.Minute {
		t.Errorf("matrix substitution: %+v", tj)
	}
	if tj.Limits != (Limits{CPUs: 0.5, Memory: 256 << 20, Pids: 64, Disk: 64 << 20, Log: 1 << 20}) {
		t.Errorf("limits %+v", tj.Limits)
	}
	if diff := cmp.Diff([]string{"ci/token"}, d.SecretRefs()); diff != "" {
		t.Errorf("secret refs: %s", diff)
	}
	if len(d.On.Schedules) != 1 || !d.On.Manual || d.On.PullRequest == nil {
		t.Errorf("triggers %+v", d.On)
	}
	next := d.On.Schedules[0].Next(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	if !next.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("next schedule %v", next)
	}
	if b := d.Job("build").Steps[1]; b.Type != StepBuildImage || b.With["build-arg:VERSION"] != "1" {
		t.Errorf("build-image step %+v", b)
	}
}

func TestParse_Bad(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		want string
	}{
		{"invalid yaml", "jobs:\n  test:\n    steps: [\n", 3, "invalid YAML"},
		{"tab indentation", "jobs:\n\ttest: {}\n", 2, "invalid YAML"},
		{"empty", "", 1, "empty"},
		{"no jobs", "env: {A: b}\n", 1, "missing `jobs:`"},
		{"unknown top key", "jobz: {}\njobs: {a: {steps: [{run: x}]}}\n", 1, `unknown key "jobz"`},
		{"unknown job key", "jobs:\n  a:\n    stepz: []\n    steps: [{run: x}]\n", 3, `unknown key "stepz"`},
		{"unknown step type", "jobs:\n  a:\n    steps:\n      - run: x\n      - release: prod\n", 5, `unknown step type or key "release"`},
		{"deploy without environment", "jobs:\n  a:\n    steps:\n      - deploy: {image: app:1}\n", 4, "needs `environment:`"},
		{"deploy without image", "jobs:\n  a:\n    steps:\n      - deploy: {environment: staging}\n", 4, "needs `image:`"},
		{"deploy bad environment", "jobs:\n  a:\n    steps:\n      - deploy: {environment: Prod!, image: app:1}\n", 4, "environment names are"},
		{"deploy bad strategy", "jobs:\n  a:\n    steps:\n      - deploy: {environment: prod, image: app:1, strategy: yolo}\n", 4, `strategy "yolo"`},
		{"deploy bad approval timeout", "jobs:\n  a:\n    steps:\n      - deploy: {environment: prod, image: app:1, approval-timeout: soon}\n", 4, "approval-timeout"},
		{"deploy image with spaces", "jobs:\n  a:\n    steps:\n      - deploy: {environment: prod, image: \"a b\"}\n", 4, "not an image reference"},
		{"deploy unknown param", "jobs:\n  a:\n    steps:\n      - deploy: {environment: prod, image: app:1, force: true}\n", 4, `unknown key "force"`},
		{"two step types", "jobs:\n  a:\n    steps:\n      - {run: x, scan: {}}\n", 4, "two step types"},
		{"no step type", "jobs:\n  a:\n    steps:\n      - name: x\n", 4, "no step type"},
		{"no steps", "jobs:\n  a:\n    image: x\n", 2, "needs `steps:`"},
		{"needs cycle", "jobs:\n  a:\n    needs: [c]\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    steps: [{run: x}]\n  c:\n    needs: b\n    steps: [{run: x}]\n", 3, "cycle: a → c → b → a"},
		{"needs itself", "jobs:\n  a:\n    needs: [a]\n    steps: [{run: x}]\n", 3, "needs itself"},
		{"needs unknown", "jobs:\n  a:\n    steps: [{run: x}]\n  b:\n    needs: [zz]\n    steps: [{run: x}]\n", 5, `needs "zz", which is not a job`},
		{"bad timeout", "jobs:\n  a:\n    timeout: forever\n    steps: [{run: x}]\n", 3, "not a positive duration"},
		{"timeout too long", "jobs:\n  a:\n    timeout: 48h\n    steps: [{run: x}]\n", 3, "over the maximum"},
		{"bad cron", "on:\n  schedule:\n    - cron: \"61 * * * *\"\njobs: {a: {steps: [{run: x}]}}\n", 3, "cron"},
		{"cron every second", "on:\n  schedule:\n    - cron: \"@every 1s\"\njobs: {a: {steps: [{run: x}]}}\n", 3, "@every is not supported"},
		{"bad condition", "jobs:\n  a:\n    if: branch = 'main'\n    steps: [{run: x}]\n", 3, "condition"},
		{"unknown condition name", "jobs:\n  a:\n    if: secrets.X == 'y'\n    steps: [{run: x}]\n", 3, `unknown name "secrets.X"`},
		{"push-image without to", "jobs:\n  a:\n    steps:\n      - push-image: {image: x}\n", 4, "needs `to:`"},
		{"build-image unknown param", "jobs:\n  a:\n    steps:\n      - build-image: {tag: x, squash: true}\n", 4, `unknown key "squash"`},
		{"scan bad fail-on", "jobs:\n  a:\n    steps:\n      - scan: {fail-on: severe}\n", 4, "fail-on"},
		{"matrix too big", "jobs:\n  a:\n    matrix: {x: [1,2,3,4,5,6,7,8], y: [1,2,3,4,5,6,7,8], z: [1,2]}\n    steps: [{run: x}]\n", 3, "combinations"},
		{"bad secret env name", "jobs:\n  a:\n    secrets: {1X: y}\n    steps: [{run: x}]\n", 3, "environment variable name"},
		{"artifact escapes", "jobs:\n  a:\n    artifacts: [../etc/passwd]\n    steps: [{run: x}]\n", 3, "inside the workspace"},
		{"unknown stage", "stages: [a]\njobs:\n  j:\n    stage: b\n    steps: [{run: x}]\n", 4, `stage "b" is not listed`},
		{"duplicate job", "jobs:\n  a: {steps: [{run: x}]}\n  a: {steps: [{run: y}]}\n", 3, "defined twice"},
		{"aliases", "x: &a {run: y}\njobs:\n  a: {steps: [*a]}\n", 1, "aliases"},
		{"host with image", "jobs:\n  a:\n    executor: host\n    image: alpine\n    steps: [{run: x}]\n", 3, "host executor cannot run an image"},
		{"bad memory", "jobs:\n  a:\n    limits: {memory: lots}\n    steps: [{run: x}]\n", 3, "limits.memory"},
		{"jobs not a mapping", "jobs: [a, b]\n", 1, "jobs must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("Parse = %v; want Errors", err)
			}
			for _, e := range es {
				if e.Line == tt.line && strings.Contains(e.Msg, tt.want) {
					if !strings.HasPrefix(e.Error(), DefinitionPath+":") {
						t.Errorf("error %q does not name the file", e.Error())
					}
					return
				}
			}
			t.Errorf("errors:\n%v\nwant one at line %d containing %q", err, tt.line, tt.want)
		})
	}
}

func TestParse_TooLarge(t *testing.T) {
	big := "jobs: {a: {steps: [{run: \"" + strings.Repeat("x", MaxDefinitionBytes) + "\"}]}}"
	if _, err := Parse([]byte(big)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("Parse of %d bytes = %v", len(big), err)
	}
}

func TestCondition(t *testing.T) {
	vars := map[string]string{"branch": "main", "event": "push", "matrix.go": "1.26", "tag": ""}
	tests := []struct {
		src    string
		failed bool
		want   bool
	}{
		{"", false, true},
		{"", true, false},
		{"branch == 'main'", false, true},
		{"branch != 'main'", false, false},
		{`event == "pull_request" || branch == 'main'`, false, true},
		{"branch == 'main' && matrix.go == '1.25'", false, false},
		{"!(tag)", false, true},
		{"always()", true, true},
		{"failure()", true, true},
		{"failure()", false, false},
		{"success() && branch == 'main'", true, false},
	}
	for _, tt := range tests {
		c, err := ParseCondition(tt.src)
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if got := c.Eval(&Context{Vars: vars, Failed: tt.failed}); got != tt.want {
			t.Errorf("%q (failed=%v) = %v; want %v", tt.src, tt.failed, got, tt.want)
		}
	}
	for _, bad := range []string{"branch ==", "(branch", "foo()", "branch === 'x'", "'unterminated", strings.Repeat("(", 100) + "branch" + strings.Repeat(")", 100), "branch 'x'"} {
		if _, err := ParseCondition(bad); err == nil {
			t.Errorf("ParseCondition(%q) accepted", bad)
		}
	}
}
