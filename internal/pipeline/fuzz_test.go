package pipeline

import (
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(`jobs: {test: {steps: [{run: echo hello}]}}`))
	f.Add([]byte(full))
	f.Add([]byte("jobs:\n  a:\n    needs: [b]\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    steps: [{run: x}]\n"))
	f.Add([]byte("x: &a [*a]\n"))
	f.Add([]byte("on: [push, manual]\njobs: {a: {matrix: {x: [1, 2]}, steps: [{scan: {}}]}}"))
	f.Add([]byte("jobs: {a: {steps: [{deploy: {environment: staging, image: app:1, strategy: canary, approval-timeout: 10m, reason: r}}]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err == nil {
			if len(d.Jobs) == 0 || len(d.Jobs) > MaxJobs {
				t.Fatalf("accepted %d jobs", len(d.Jobs))
			}
			for _, j := range d.Jobs {
				if len(j.Steps) == 0 {
					t.Fatalf("job %q without steps accepted", j.Name)
				}
				for _, n := range j.Needs {
					if d.Job(n) == nil {
						t.Fatalf("job %q needs unknown %q", j.Name, n)
					}
				}
			}
		}
	})
}

func FuzzCondition(f *testing.F) {
	for _, s := range []string{"", "branch == 'main'", "!(a) || always()", "matrix.x != \"y\" && success()"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := ParseCondition(src)
		if err == nil {
			c.Eval(&Context{Vars: map[string]string{"branch": "main"}})
		}
	})
}
