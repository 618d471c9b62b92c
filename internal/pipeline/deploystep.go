package pipeline

import (
	"regexp"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// The deploy step records a release of an image the job pushed to
// Rampart's registry and deploys it to one of the project's environments
// through the deploy service, as the run's user (ImageBuilder carries it
// out with the other image steps):
//
//	- deploy:
//	    environment: staging         # required
//	    image: app:1                 # required: a tag build-image made, a reference push-image pushed, or HOST/REPO@sha256:…
//	    strategy: rolling            # optional: recreate, rolling, blue_green or canary
//	    reason: nightly              # optional
//	    approval-timeout: 30m        # optional: give up when approvals take longer
//
// The environment's protection rules apply as for any deployment; the
// step's log shows the release number, the gates' decisions, the wait
// for approvals and the rollout's progress, and the step fails unless
// the release ends running.

var (
	deployEnvRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	deployStrategies = []string{"recreate", "rolling", "blue_green", "canary"}
)

// Limits of the deploy step's parameters.
const (
	maxDeployReason = 1000
	maxDeployImage  = 512
)

// deployStep checks a deploy step's parameters (st.With) at parse time.
func (p *parseState) deployStep(n *yaml.Node, st Step, what string) {
	w := st.With
	if env := w["environment"]; env != "" && !strings.Contains(env, "${{") && !deployEnvRE.MatchString(env) {
		p.errorf(n, "%s: environment %q: environment names are 1-31 lowercase letters, digits and dashes, starting with a letter", what, env)
	}
	if img := w["image"]; len(img) > maxDeployImage || strings.ContainsAny(img, " \t\r\n") {
		p.errorf(n, "%s: image %q is not an image reference", what, img)
	}
	if s := w["strategy"]; s != "" {
		ok := false
		for _, v := range deployStrategies {
			ok = ok || s == v
		}
		if !ok {
			p.errorf(n, "%s: strategy %q: use %s", what, s, strings.Join(deployStrategies, ", "))
		}
	}
	if len(w["reason"]) > maxDeployReason {
		p.errorf(n, "%s: reason is longer than %d bytes", what, maxDeployReason)
	}
	if t := w["approval-timeout"]; t != "" {
		if d, err := time.ParseDuration(t); err != nil || d <= 0 || d > MaxTimeout {
			p.errorf(n, "%s: approval-timeout %q is not a positive duration up to %s, like 30m", what, t, MaxTimeout)
		}
	}
}
