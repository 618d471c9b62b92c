package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse_DeployStep(t *testing.T) {
	d, err := Parse([]byte(`jobs:
  ship:
    steps:
      - build-image: {tag: "app:1"}
      - deploy:
          environment: staging
          image: app:1
          strategy: canary
          reason: nightly
          approval-timeout: 30m
`))
	if err != nil {
		t.Fatal(err)
	}
	st := d.Jobs[0].Steps[1]
	want := map[string]string{"environment": "staging", "image": "app:1", "strategy": "canary", "reason": "nightly", "approval-timeout": "30m"}
	if st.Type != StepDeploy || st.Name != StepDeploy || !cmp.Equal(st.With, want) {
		t.Errorf("deploy step %+v; want type and name deploy with %v", st, want)
	}
}
