package imagesteps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/rampartsec/rampart/internal/apperr"
	rauthn "github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// Environment variables a job sets (as secrets) to push to registries
// other than Rampart's.
const (
	EnvRegistryUsername = "REGISTRY_USERNAME"
	EnvRegistryPassword = "REGISTRY_PASSWORD"
)

// Workspace directories the steps write.
const (
	ImagesDir = ".rampart/images"
	SBOMDir   = ".rampart/sbom"
)

// Registry is Rampart's own registry (*registry.Service).
type Registry interface {
	MintRepositoryToken(ctx context.Context, p *rauthn.Principal, repo string, push bool, ttl time.Duration) (string, error)
	SignImage(ctx context.Context, repoName, digest, signedBy string) error
}

// Users finds the user a run acts as (*identity.Service).
type Users interface {
	UserByName(ctx context.Context, username string) (identity.User, error)
	Subject(ctx context.Context, u identity.User, scopes []authz.Scope, via string) (authz.Subject, error)
}

// Deps are the Builder's collaborators.
type Deps struct {
	Registry Registry
	Users    Users
	// Inventory returns the scanner that inventories built images for
	// their SBOM.
	Inventory func(ctx context.Context) (image.Inventory, error)
	// PublicURL is Rampart's base URL: its host names the registry.
	PublicURL string
	Logger    *slog.Logger
	Clock     func() time.Time
	// BuilderID names the builder in provenance (default
	// image.DefaultBuilderID).
	BuilderID string
	// ToolVersion is Rampart's version, recorded in SBOMs.
	ToolVersion string
	// MaxJobs bounds how many jobs' builds are remembered (default 256).
	MaxJobs int
	// Deployer carries out deploy steps (nil: they fail with a clear
	// error).
	Deployer Deployer
}

// Builder implements pipeline.ImageBuilder.
type Builder struct {
	d        Deps
	host     string // the registry host (public URL host)
	insecure bool   // the public URL is plain HTTP
	log      *slog.Logger

	mu    sync.Mutex
	jobs  map[jobKey]*jobState
	order []jobKey
}

var _ pipeline.ImageBuilder = (*Builder)(nil)

type jobKey struct {
	run       int64
	job       string
	workspace string
}

// jobState is what earlier image steps of a job left for later ones.
type jobState struct {
	builds map[string]*built       // by tag
	pushes map[string]*pushedImage // by the reference pushed to, and by its digest reference
}

type built struct {
	tag      string
	digest   v1.Hash
	evidence *image.Evidence
}

type pushedImage struct {
	tag     string
	ref     name.Reference
	digest  name.Digest
	rampart bool
	// evidence are the SBOM and provenance manifests attached to it.
	evidence []name.Digest
}

// New returns a Builder.
func New(d Deps) (*Builder, error) {
	if d.Registry == nil || d.Users == nil || d.Inventory == nil || d.Logger == nil || d.PublicURL == "" {
		return nil, errors.New("imagesteps: Registry, Users, Inventory, Logger and PublicURL are required")
	}
	u, err := url.Parse(d.PublicURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("imagesteps: public URL %q has no host", d.PublicURL)
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.BuilderID == "" {
		d.BuilderID = image.DefaultBuilderID
	}
	if d.MaxJobs <= 0 {
		d.MaxJobs = 256
	}
	return &Builder{d: d, host: u.Host, insecure: u.Scheme == "http", log: d.Logger.With("component", "imagesteps"),
		jobs: map[jobKey]*jobState{}}, nil
}

// RegistryHost is the host images in Rampart's registry are named with.
func (b *Builder) RegistryHost() string { return b.host }

// ImageStep implements pipeline.ImageBuilder. The error is a message for
// the job's log.
func (b *Builder) ImageStep(ctx context.Context, s pipeline.ImageStep) error {
	var err error
	switch s.Type {
	case pipeline.StepBuildImage:
		err = b.build(ctx, s)
	case pipeline.StepPushImage:
		err = b.push(ctx, s)
	case pipeline.StepSign:
		err = b.sign(ctx, s)
	case pipeline.StepSBOM:
		err = b.sbom(ctx, s)
	case pipeline.StepDeploy:
		err = b.deploy(ctx, s)
	default:
		err = apperr.E(apperr.Invalid, "unknown image step %q", s.Type)
	}
	if err == nil {
		return nil
	}
	if apperr.KindOf(err) == apperr.Internal {
		b.log.Warn("image step", "type", s.Type, "run", s.Run.RunID, "job", s.Run.Job, "err", err)
	}
	return errors.New(apperr.Message(err))
}

func (b *Builder) state(s pipeline.ImageStep) *jobState {
	k := jobKey{run: s.Run.RunID, job: s.Run.Job, workspace: s.Workspace}
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.jobs[k]; ok {
		return st
	}
	st := &jobState{builds: map[string]*built{}, pushes: map[string]*pushedImage{}}
	b.jobs[k] = st
	b.order = append(b.order, k)
	for len(b.order) > b.d.MaxJobs {
		delete(b.jobs, b.order[0])
		b.order = b.order[1:]
	}
	return st
}

func logf(s pipeline.ImageStep, format string, args ...any) {
	if s.Log != nil {
		_, _ = io.WriteString(s.Log, fmt.Sprintf("[rampart] "+format+"\n", args...))
	}
}

// build carries out build-image.
func (b *Builder) build(ctx context.Context, s pipeline.ImageStep) error {
	tag := s.With["tag"]
	if err := checkTag(tag); err != nil {
		return err
	}
	ctxRel := s.With["context"]
	if ctxRel == "" {
		ctxRel = "."
	}
	contextDir, err := inside(s.Workspace, ctxRel, "context")
	if err != nil {
		return err
	}
	if st, err := os.Stat(contextDir); err != nil || !st.IsDir() {
		return apperr.E(apperr.Invalid, "build-image: context %q is not a directory of the workspace", ctxRel)
	}
	dfRel := s.With["dockerfile"]
	if dfRel == "" {
		dfRel = filepath.ToSlash(filepath.Join(ctxRel, "Dockerfile"))
	}
	dfPath, err := inside(s.Workspace, dfRel, "dockerfile")
	if err != nil {
		return err
	}
	text, err := readLimited(dfPath, image.MaxDockerfileSize)
	if err != nil {
		return apperr.E(apperr.Invalid, "build-image: cannot read the Dockerfile %s", dfRel)
	}
	args := map[string]string{}
	for k, v := range s.With {
		if a, ok := strings.CutPrefix(k, "build-arg:"); ok {
			args[a] = v
		}
	}
	epoch, err := sourceDateEpoch(s.Env)
	if err != nil {
		return err
	}
	logf(s, "building %s from %s (context %s)", tag, dfRel, ctxRel)
	started := b.d.Clock()
	res, err := image.Build(ctx, image.BuildOptions{ContextDir: contextDir, Dockerfile: dfRel, DockerfileText: text,
		BuildArgs: args, Target: s.With["target"], Epoch: epoch, Bases: &bases{b: b, s: s}})
	if err != nil {
		return prefix("build-image", err)
	}
	inv, err := b.d.Inventory(ctx)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "the scanner is not available")
	}
	// The subject is named as the tag names it, without the tag.
	ev, err := image.MakeEvidence(ctx, res, image.EvidenceOptions{Scanner: inv, Name: tag[:strings.LastIndex(tag, ":")],
		Source:    image.Source{Repository: strings.TrimRight(b.d.PublicURL, "/") + "/" + s.Run.Repo + ".git", Commit: s.Run.Commit, Ref: s.Run.Ref},
		BuilderID: b.d.BuilderID, InvocationID: s.Run.URL, Started: started, Finished: b.d.Clock(), ToolVersion: b.d.ToolVersion})
	if err != nil {
		return prefix("build-image: evidence", err)
	}
	parent, err := realDir(s.Workspace, ImagesDir, true)
	if err != nil {
		return prefix("build-image", err)
	}
	dir := filepath.Join(parent, dirName(tag))
	if err := os.RemoveAll(dir); err != nil {
		return apperr.Wrap(err, apperr.Internal, "remove the previous layout")
	}
	if err := image.WriteLayout(dir, tag, res.Image, ev); err != nil {
		return prefix("build-image", err)
	}
	st := b.state(s)
	b.mu.Lock()
	st.builds[tag] = &built{tag: tag, digest: res.Digest, evidence: ev}
	b.mu.Unlock()
	logf(s, "built %s: %s (layout %s/%s)", tag, res.Digest, ImagesDir, dirName(tag))
	return nil
}

// push carries out push-image.
func (b *Builder) push(ctx context.Context, s pipeline.ImageStep) error {
	st := b.state(s)
	bl, err := b.builtImage(st, s.With["image"])
	if err != nil {
		return err
	}
	dest, rampart, err := b.destination(s.With["to"])
	if err != nil {
		return err
	}
	if !rampart && !s.Network {
		return apperr.E(apperr.Forbidden, "push-image: %s is not this Rampart's registry (%s): the job needs `network: true` to reach it", dest.Context().RegistryStr(), b.host)
	}
	dir, err := realDir(s.Workspace, ImagesDir+"/"+dirName(bl.tag), false)
	if err != nil {
		return prefix("push-image", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return apperr.E(apperr.Invalid, "push-image: the layout of %s cannot be read (was %s/%s changed?)", bl.tag, ImagesDir, dirName(bl.tag))
	}
	img, err := idx.Image(bl.digest)
	if err != nil {
		return apperr.E(apperr.Invalid, "push-image: the layout of %s no longer holds %s, the image build-image made", bl.tag, bl.digest)
	}
	if d, err := img.Digest(); err != nil || d != bl.digest {
		return apperr.E(apperr.Invalid, "push-image: the layout of %s was changed since build-image", bl.tag)
	}
	opts, err := b.pushOptions(ctx, s, dest.Context().RepositoryStr(), rampart, true)
	if err != nil {
		return prefix("push-image", err)
	}
	logf(s, "pushing %s to %s", bl.tag, dest)
	pushed, err := image.Push(ctx, img, dest.String(), bl.evidence, opts)
	if err != nil {
		return prefix("push-image", err)
	}
	p := &pushedImage{tag: bl.tag, ref: dest, digest: pushed.Image, rampart: rampart, evidence: pushed.Referrers}
	b.mu.Lock()
	st.pushes[dest.String()] = p
	st.pushes[pushed.Image.String()] = p
	b.mu.Unlock()
	logf(s, "pushed %s", pushed.Image)
	for _, r := range pushed.Referrers {
		logf(s, "attached evidence %s", r.DigestStr())
	}
	return nil
}

// sign carries out sign.
func (b *Builder) sign(ctx context.Context, s pipeline.ImageStep) error {
	st := b.state(s)
	p, err := b.pushedImage(st, s.With["image"])
	if err != nil {
		return err
	}
	repo := p.digest.Context().RepositoryStr()
	if key := s.With["key"]; key != "" {
		pemKey, ok := s.Env[key]
		if !ok || pemKey == "" {
			return apperr.E(apperr.Invalid, "sign: key %q names no variable of the job (declare it under secrets:)", key)
		}
		signer, err := image.ParseSigningKey([]byte(pemKey))
		if err != nil {
			return prefix("sign: key "+key, err)
		}
		opts, err := b.pushOptions(ctx, s, repo, p.rampart, true)
		if err != nil {
			return prefix("sign", err)
		}
		tag, err := image.Sign(ctx, p.digest, signer, opts)
		if err != nil {
			return prefix("sign", err)
		}
		logf(s, "signed %s with the key in %s: %s", p.digest, key, tag)
		return nil
	}
	if !p.rampart {
		return apperr.E(apperr.Invalid, "sign: %s is not in this Rampart's registry (%s): name a key (a secret) to sign it", p.digest, b.host)
	}
	// Only who may push to the repository may have it signed: minting the
	// job's push token checks that, and audits it.
	pr, err := b.principal(ctx, s)
	if err != nil {
		return err
	}
	if _, err := b.d.Registry.MintRepositoryToken(ctx, pr, repo, true, tokenTTL(ctx)); err != nil {
		return prefix("sign", err)
	}
	actx := reqinfo.WithActor(ctx, pr.User.ID, pr.User.Username)
	signedBy := fmt.Sprintf("pipeline %s run #%d job %s", s.Run.Repo, s.Run.Number, s.Run.Job)
	if err := b.d.Registry.SignImage(actx, repo, p.digest.DigestStr(), signedBy); err != nil {
		return prefix("sign", err)
	}
	logf(s, "signed %s with the registry's key", p.digest)
	// The evidence this job attached (SBOM, provenance) is signed too:
	// a signed attestation is what the pre-deploy gate trusts.
	for _, ev := range p.evidence {
		if err := b.d.Registry.SignImage(actx, repo, ev.DigestStr(), signedBy); err != nil {
			return prefix("sign evidence "+ev.DigestStr(), err)
		}
		logf(s, "signed evidence %s with the registry's key", ev.DigestStr())
	}
	return nil
}

// sbom carries out sbom.
func (b *Builder) sbom(_ context.Context, s pipeline.ImageStep) error {
	switch f := s.With["format"]; f {
	case "", "cyclonedx":
	default:
		return apperr.E(apperr.Invalid, "sbom: format %q: only cyclonedx is supported", f)
	}
	st := b.state(s)
	bl, err := b.builtImage(st, s.With["image"])
	if err != nil {
		return err
	}
	rel := SBOMDir + "/" + dirName(bl.tag) + ".cdx.json"
	dir, err := realDir(s.Workspace, SBOMDir, true)
	if err != nil {
		return prefix("sbom", err)
	}
	p := filepath.Join(dir, dirName(bl.tag)+".cdx.json")
	// Replace, never write through, whatever a job put there.
	tmp, err := os.CreateTemp(filepath.Dir(p), ".sbom-*")
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "write the SBOM")
	}
	_, werr := tmp.Write(bl.evidence.SBOM)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644), os.Rename(tmp.Name(), p)); err != nil {
		os.Remove(tmp.Name())
		return apperr.Wrap(err, apperr.Internal, "write the SBOM")
	}
	logf(s, "wrote the CycloneDX SBOM of %s (%s) to %s", bl.tag, bl.digest, rel)
	return nil
}

// builtImage finds what build-image built under ref: a tag built by this
// job, or a reference it pushed that image to.
func (b *Builder) builtImage(st *jobState, ref string) (*built, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bl, ok := st.builds[ref]; ok {
		return bl, nil
	}
	if p, ok := st.pushes[normalize(ref)]; ok {
		if bl, ok := st.builds[p.tag]; ok {
			return bl, nil
		}
	}
	return nil, apperr.E(apperr.Invalid, "image %q was not built by an earlier build-image step of this job", ref)
}

// pushedImage finds what push-image pushed under ref: a reference pushed
// to, its digest, or the tag built.
func (b *Builder) pushedImage(st *jobState, ref string) (*pushedImage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := st.pushes[normalize(ref)]; ok {
		return p, nil
	}
	var found *pushedImage
	for _, p := range st.pushes {
		if p.tag == ref {
			if found != nil && found.digest != p.digest {
				return nil, apperr.E(apperr.Invalid, "image %q was pushed to several places: name the one to sign", ref)
			}
			found = p
		}
	}
	if found != nil {
		return found, nil
	}
	return nil, apperr.E(apperr.Invalid, "image %q was not pushed by an earlier push-image step of this job", ref)
}

// normalize spells a reference as push recorded it.
func normalize(ref string) string {
	if n, err := name.ParseReference(ref, name.StrictValidation); err == nil {
		return n.String()
	}
	return ref
}

// destination parses push-image's `to`.
func (b *Builder) destination(to string) (name.Reference, bool, error) {
	host, err := registryOf(to)
	if err != nil {
		return nil, false, err
	}
	rampart := strings.EqualFold(host, b.host)
	var nopts []name.Option
	if rampart && b.insecure {
		nopts = append(nopts, name.Insecure)
	}
	n, err := name.ParseReference(to, append(nopts, name.StrictValidation)...)
	if err != nil {
		return nil, false, apperr.E(apperr.Invalid, "push-image: to %q is not an image reference (HOST/REPOSITORY:TAG)", to)
	}
	return n, rampart, nil
}

// pushOptions authenticate to the registry holding repo: a job token on
// Rampart's, the job's REGISTRY_USERNAME/REGISTRY_PASSWORD elsewhere.
func (b *Builder) pushOptions(ctx context.Context, s pipeline.ImageStep, repo string, rampart, push bool) (image.PushOptions, error) {
	if !rampart {
		o := image.PushOptions{}
		if u, pw := s.Env[EnvRegistryUsername], s.Env[EnvRegistryPassword]; u != "" || pw != "" {
			o.Auth = &authn.Basic{Username: u, Password: pw}
		}
		return o, nil
	}
	pr, err := b.principal(ctx, s)
	if err != nil {
		return image.PushOptions{}, err
	}
	tok, err := b.d.Registry.MintRepositoryToken(ctx, pr, repo, push, tokenTTL(ctx))
	if err != nil {
		return image.PushOptions{}, err
	}
	return image.PushOptions{Auth: authn.FromConfig(authn.AuthConfig{RegistryToken: tok}), Insecure: b.insecure}, nil
}

// principal is who the run acts as on the registry: its actor, with the
// registry scopes only.
func (b *Builder) principal(ctx context.Context, s pipeline.ImageStep) (*rauthn.Principal, error) {
	if s.Run.Actor == "" || s.Run.Actor == pipeline.SystemActor {
		return nil, apperr.E(apperr.Forbidden, "this run has no user to act as on the registry (it was started by %s)", pipeline.SystemActor)
	}
	u, err := b.d.Users.UserByName(ctx, s.Run.Actor)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return nil, apperr.E(apperr.Forbidden, "the run's user %s no longer exists", s.Run.Actor)
		}
		return nil, err
	}
	if u.Disabled {
		return nil, apperr.E(apperr.Forbidden, "the run's user %s is disabled", s.Run.Actor)
	}
	sub, err := b.d.Users.Subject(ctx, u, []authz.Scope{authz.ScopeRegistryPull, authz.ScopeRegistryPush}, "pipeline")
	if err != nil {
		return nil, err
	}
	return &rauthn.Principal{User: u, Subject: sub}, nil
}

// tokenTTL is how long a job token lives: until the job's deadline, at
// most an hour (the registry's limit).
func tokenTTL(ctx context.Context) time.Duration {
	ttl := time.Hour
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d).Round(time.Second); left < ttl {
			ttl = max(left, time.Second)
		}
	}
	return ttl
}

// bases resolves FROM images for a job: local layouts and tarballs inside
// its workspace, images of Rampart's registry with a pull token for the
// run's actor, others anonymously.
type bases struct {
	b *Builder
	s pipeline.ImageStep
}

func (r *bases) Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, image.Material, error) {
	for _, pfx := range []string{image.PrefixLayout, image.PrefixTarball} {
		loc, ok := strings.CutPrefix(ref, pfx)
		if !ok {
			continue
		}
		path, sel := loc, ""
		if pfx == image.PrefixLayout {
			path, sel = splitLayoutRef(loc)
		}
		abs, err := inside(r.s.Workspace, path, "base image "+ref)
		if err != nil {
			return nil, image.Material{}, err
		}
		img, m, err := (&image.Resolver{}).Resolve(ctx, pfx+abs+sel, platform)
		if err != nil {
			return nil, image.Material{}, err
		}
		m.URI = ref // the workspace path, not the server's
		return img, m, nil
	}
	host, err := registryOf(ref)
	if err != nil || !strings.EqualFold(host, r.b.host) {
		if !r.s.Network {
			return nil, image.Material{}, apperr.E(apperr.Forbidden,
				"base image %q: only this Rampart's registry (%s) and oci-layout:/tarball: files of the workspace are reachable without `network: true`", ref, r.b.host)
		}
		return (&image.Resolver{}).Resolve(ctx, ref, platform)
	}
	n, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, image.Material{}, apperr.E(apperr.Invalid, "invalid base image %q", ref)
	}
	o, err := r.b.pushOptions(ctx, r.s, n.Context().RepositoryStr(), true, false)
	if err != nil {
		return nil, image.Material{}, prefix("base image "+ref, err)
	}
	return (&image.Resolver{Auth: o.Auth, Insecure: o.Insecure}).Resolve(ctx, ref, platform)
}

// splitLayoutRef splits DIR[:TAG|@DIGEST] as image.Resolver does.
func splitLayoutRef(loc string) (dir, sel string) {
	if i := strings.LastIndex(loc, "@"); i > 0 {
		return loc[:i], loc[i:]
	}
	if i := strings.LastIndex(loc, ":"); i > strings.LastIndex(loc, "/") {
		return loc[:i], loc[i:]
	}
	return loc, ""
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errors.New("too large")
	}
	return data, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH from the job environment.
func sourceDateEpoch(env map[string]string) (time.Time, error) {
	v, ok := env["SOURCE_DATE_EPOCH"]
	if !ok || v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > 253402300799 {
		return time.Time{}, apperr.E(apperr.Invalid, "build-image: SOURCE_DATE_EPOCH %q is not a Unix time", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// prefix puts the step's name before a user-safe message.
func prefix(what string, err error) error {
	k := apperr.KindOf(err)
	if k == apperr.Internal {
		return err
	}
	return apperr.Wrap(err, k, what+": "+apperr.Message(err))
}
