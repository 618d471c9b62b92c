package app

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"time"

	ggcrauthn "github.com/google/go-containerregistry/pkg/authn"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scm"
)

// preDeployGate is deploy's Gate: the policy engine's gates, asked about
// a release with each image's evidence from this Rampart's registry.
type preDeployGate struct {
	policy *policy.Service
	oci    *registry.Service
	scm    *scm.Service
	// host names the registry in image references; url is this
	// Rampart's public URL, which provenance names source repositories
	// under.
	host, url string
	log       interface {
		Warn(msg string, args ...any)
	}
}

// Limits on the evidence read for one image.
const (
	maxProvenanceBytes = 1 << 20
	maxReportBytes     = 64 << 20
)

// rampartBuilderPrefix starts the builder ids of Rampart's own builds
// (image.DefaultBuilderID, pipeline build steps): provenance from them
// reports the builder "rampart", the id policy.yaml trusts.
const rampartBuilderPrefix = "https://rampart.dev/builders/"

// rampartKeyID is the key id signatures by the registry's key are
// reported with (trusted_keys in policy.yaml).
const rampartKeyID = "rampart"

// Decide implements deploy.Gate.
func (g preDeployGate) Decide(ctx context.Context, gate string, in deploy.GateInput) (deploy.GateDecision, error) {
	doc := maps.Clone(in.Document)
	if imgs, ok := doc["images"].([]any); ok {
		out := make([]any, 0, len(imgs))
		for _, x := range imgs {
			img, ok := x.(map[string]any)
			if !ok {
				out = append(out, x)
				continue
			}
			img = maps.Clone(img)
			if err := g.evidence(ctx, img); err != nil {
				return deploy.GateDecision{}, err
			}
			out = append(out, img)
		}
		doc["images"] = out
	}
	d, err := g.policy.Decide(ctx, policy.Gate(gate), policy.Input{OrgID: in.OrgID, Subject: in.Subject, Environment: in.Environment,
		Repository: in.Repository, Caller: "deploy", Document: doc})
	if err != nil {
		return deploy.GateDecision{}, err
	}
	out := deploy.GateDecision{Gate: gate, ID: d.ID, Allow: d.Allow}
	for _, v := range d.Deny {
		out.Reasons = append(out.Reasons, v.String())
	}
	if d.Allow {
		for _, v := range d.Excepted {
			out.Reasons = append(out.Reasons, "set aside by an exception: "+v.Policy+": "+v.Message)
		}
		for _, v := range d.Warnings {
			out.Reasons = append(out.Reasons, "warning: "+v.String())
		}
	}
	return out, nil
}

// evidence fills img (an image of the pre-deploy document, with
// reference, repository and digest) with what this Rampart's registry
// knows of it: scan, signatures, SBOM and provenance. Images of other
// registries, and digests the registry does not hold, keep only their
// reference and digest: the built-in policies deny what cannot be shown.
func (g preDeployGate) evidence(ctx context.Context, img map[string]any) error {
	repository, _ := img["repository"].(string)
	digest, _ := img["digest"].(string)
	name, ok := strings.CutPrefix(repository, g.host+"/")
	if g.host == "" || !ok || digest == "" {
		return nil
	}
	ev, err := g.oci.Evidence(ctx, name, digest)
	if apperr.Is(err, apperr.NotFound) || apperr.Is(err, apperr.Invalid) {
		return nil
	}
	if err != nil {
		return err
	}
	if st := scanState(ev.ScanStatus); st != "" {
		var rep *report.Report
		if st == "scanned" && len(ev.Report) > 0 && len(ev.Report) <= maxReportBytes {
			rep = new(report.Report)
			if json.Unmarshal(ev.Report, rep) != nil {
				rep, st = nil, "failed"
			}
		}
		if st == "scanned" && rep == nil {
			st = "failed" // scanned, but the report is unreadable: nothing to judge
		}
		scan := scanDoc(st, rep)
		if !ev.ScannedAt.IsZero() {
			scan["scanned_at"] = ev.ScannedAt.UTC().Format(time.RFC3339)
		}
		img["scan"] = scan
	}
	sigs := []any{}
	if ev.Signed {
		sigs = append(sigs, map[string]any{"key": rampartKeyID, "verified": true})
	}
	img["signatures"] = sigs
	sbom := map[string]any{"present": false}
	var prov *registry.Referrer
	for i, r := range ev.Referrers {
		switch r.ArtifactType {
		case image.ArtifactTypeSBOM:
			sbom = map[string]any{"present": true, "format": "cyclonedx"}
		case image.ArtifactTypeProvenance:
			prov = &ev.Referrers[i] // the newest wins
		}
	}
	img["sbom"] = sbom
	img["provenance"] = g.provenance(ctx, name, digest, prov)
	return nil
}

// scanState maps the registry's scan states to the schema's.
func scanState(s string) string {
	switch s {
	case registry.ScanPassed, registry.ScanQuarantined:
		return "scanned"
	case registry.ScanPending:
		return "pending"
	case registry.ScanFailed:
		return "failed"
	}
	return ""
}

// provenance reads an in-toto SLSA provenance attestation attached to
// repo@digest. It is verified when the attestation manifest carries a
// signature by the registry's key and the statement is about this very
// digest.
func (g preDeployGate) provenance(ctx context.Context, repo, digest string, r *registry.Referrer) map[string]any {
	if r == nil {
		return map[string]any{"present": false}
	}
	b, err := g.oci.ArtifactContent(ctx, repo, r.Digest, maxProvenanceBytes)
	if err != nil {
		g.log.Warn("read a provenance attestation", "repository", repo, "attestation", r.Digest, "err", apperr.Message(err))
		return map[string]any{"present": false}
	}
	st, err := image.ParseStatement(b)
	if err != nil {
		return map[string]any{"present": false}
	}
	alg, hex, _ := strings.Cut(digest, ":")
	about := false
	for _, s := range st.Subject {
		if s.Digest[alg] == hex {
			about = true
		}
	}
	if !about {
		return map[string]any{"present": false}
	}
	builder := st.Predicate.RunDetails.Builder.ID
	if strings.HasPrefix(builder, rampartBuilderPrefix) {
		builder = "rampart"
	}
	src := st.Predicate.BuildDefinition.ExternalParameters.Source
	source := map[string]any{"repository": src.Repository, "ref": src.Ref, "commit": src.Commit, "protected": false}
	if name, ok := g.localRepository(src.Repository); ok {
		source["host"], source["repository"] = "rampart", name
		org, rn, _ := strings.Cut(name, "/")
		if sr, err := g.scm.Repo(ctx, org, rn); err == nil {
			if p, err := g.scm.ProtectedBranch(ctx, sr, src.Ref); err == nil {
				source["protected"] = p
			}
		}
	} else if host, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(src.Repository, "https://"), "http://"), "/"); ok {
		source["host"] = host
	}
	return map[string]any{"present": true, "verified": r.Signed, "predicate_type": st.PredicateType, "builder": builder, "source": source}
}

// localRepository returns ORG/NAME when uri names a repository of this
// Rampart (its public URL, then ORG/NAME[.git]).
func (g preDeployGate) localRepository(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, strings.TrimSuffix(g.url, "/")+"/")
	if g.url == "" || !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, ".git")
	org, name, ok := strings.Cut(rest, "/")
	if !ok || org == "" || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return rest, true
}

// deployPulls gives deploy's targets credentials for this Rampart's
// registry: a pull-only registry token for the one repository of the
// image, minted for the person who asked for the deployment (deploy's
// Puller in the context), never an admin credential. Other registries,
// and pulls without a puller, go anonymous.
type deployPulls struct {
	oci  *registry.Service
	ids  *identity.Service
	host string
	log  interface {
		Warn(msg string, args ...any)
	}
}

// pullTokenTTL is how long a deploy pull token lives.
const pullTokenTTL = 10 * time.Minute

// token mints the pull token of repository for ctx's puller.
func (k deployPulls) token(ctx context.Context, repository string) (username, token string, ok bool) {
	p, ok := deploy.PullerFrom(ctx)
	if !ok || k.host == "" {
		return "", "", false
	}
	u, err := k.ids.User(ctx, p.UserID)
	if err != nil {
		k.log.Warn("deploy pull credentials: find the deployer", "user_id", p.UserID, "err", apperr.Message(err))
		return "", "", false
	}
	sub, err := k.ids.Subject(ctx, u, []authz.Scope{authz.ScopeRegistryPull}, "deploy")
	if err != nil {
		k.log.Warn("deploy pull credentials: the deployer's roles", "user", u.Username, "err", apperr.Message(err))
		return "", "", false
	}
	tok, err := k.oci.MintRepositoryToken(ctx, &authn.Principal{User: u, Subject: sub}, repository, false, pullTokenTTL)
	if err != nil {
		k.log.Warn("deploy pull credentials: mint a pull token", "user", u.Username, "repository", repository, "err", apperr.Message(err))
		return "", "", false
	}
	return u.Username, tok, true
}

// Resolve implements authn.Keychain (without a context there is no
// puller: anonymous).
func (k deployPulls) Resolve(res ggcrauthn.Resource) (ggcrauthn.Authenticator, error) {
	return k.ResolveContext(context.Background(), res)
}

// ResolveContext implements authn.ContextKeychain for the node runtime.
func (k deployPulls) ResolveContext(ctx context.Context, res ggcrauthn.Resource) (ggcrauthn.Authenticator, error) {
	if res.RegistryStr() != k.host {
		return ggcrauthn.Anonymous, nil
	}
	repo, ok := strings.CutPrefix(res.String(), k.host+"/")
	if !ok {
		return ggcrauthn.Anonymous, nil
	}
	if _, tok, ok := k.token(ctx, repo); ok {
		return &ggcrauthn.Bearer{Token: tok}, nil
	}
	return ggcrauthn.Anonymous, nil
}

// PullAuth is kubetarget's pull secret: the deployer's user name and a
// pull-only token for the image's repository.
func (k deployPulls) PullAuth(ctx context.Context, img string) (string, deploy.Value, bool) {
	repo, ok := strings.CutPrefix(img, k.host+"/")
	if !ok {
		return "", "", false
	}
	user, tok, ok := k.token(ctx, repo)
	return user, deploy.Value(tok), ok
}

var (
	_ deploy.Gate               = preDeployGate{}
	_ ggcrauthn.ContextKeychain = deployPulls{}
)
