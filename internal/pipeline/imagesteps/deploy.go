package imagesteps

import (
	"context"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/pipeline"
)

// Deployer records a release of an image in Rampart's registry and
// deploys it for a pipeline run, as the run's user, following the
// deployment until it ends (the wiring in internal/app, on top of
// package deploy). The error is a user-safe message.
type Deployer interface {
	DeployImage(ctx context.Context, req DeployRequest) error
}

// DeployRequest is a deploy step with its image resolved to a digest.
type DeployRequest struct {
	Run pipeline.RunRef
	// Image is the repository in Rampart's registry (HOST/ORG/NAME) and
	// Digest the image's digest: what the release records.
	Image  string
	Digest string
	// Environment, Strategy and Reason are the step's parameters.
	Environment string
	Strategy    string
	Reason      string
	// ApprovalTimeout bounds the wait for approvals (0: the
	// environment's).
	ApprovalTimeout time.Duration
	// Log writes a line to the job's log.
	Log func(line string)
}

// deploy carries out the deploy step: the image is one this job pushed
// to Rampart's registry (named by the tag build-image made, the
// reference push-image pushed to, or its digest) or a reference by
// digest into Rampart's registry; a mutable tag of another run is not
// taken, so the release records exactly what the step was given.
func (b *Builder) deploy(ctx context.Context, s pipeline.ImageStep) error {
	if b.d.Deployer == nil {
		return apperr.E(apperr.Unavailable, "deploy steps are not available on this server (no deploy service configured)")
	}
	ref := s.With["image"]
	var repo, digest string
	if p, err := b.pushedImage(b.state(s), ref); err == nil {
		if !p.rampart {
			return apperr.E(apperr.Invalid, "deploy: %s is not in this Rampart's registry (%s): releases run images of its registry", p.digest, b.host)
		}
		repo, digest = p.digest.Context().Name(), p.digest.DigestStr()
	} else {
		host, herr := registryOf(ref)
		d, derr := name.NewDigest(ref, name.StrictValidation)
		switch {
		case herr != nil || derr != nil:
			return apperr.E(apperr.Invalid, "deploy: image %q was not pushed by an earlier push-image step of this job; name it as push-image did, or as %s/REPOSITORY@sha256:…", ref, b.host)
		case !strings.EqualFold(host, b.host):
			return apperr.E(apperr.Invalid, "deploy: %s is not in this Rampart's registry (%s): releases run images of its registry", ref, b.host)
		}
		repo, digest = d.Context().Name(), d.DigestStr()
	}
	var wait time.Duration
	if t := s.With["approval-timeout"]; t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return apperr.E(apperr.Invalid, "deploy: approval-timeout %q is not a duration", t)
		}
		wait = d
	}
	logf(s, "deploying %s@%s to %s", repo, digest, s.With["environment"])
	return b.d.Deployer.DeployImage(ctx, DeployRequest{Run: s.Run, Image: repo, Digest: digest, Environment: s.With["environment"],
		Strategy: s.With["strategy"], Reason: s.With["reason"], ApprovalTimeout: wait, Log: func(line string) { logf(s, "%s", line) }})
}
