package image

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan"
	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/sbom"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// Media and predicate types of the evidence.
const (
	// ArtifactTypeSBOM is the artifact type (and blob media type) of the
	// CycloneDX SBOM referrer.
	ArtifactTypeSBOM = "application/vnd.cyclonedx+json"
	// ArtifactTypeProvenance is the artifact type (and blob media type) of
	// the in-toto provenance referrer.
	ArtifactTypeProvenance = "application/vnd.in-toto+json"
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateSLSA is the SLSA provenance v1 predicate type.
	PredicateSLSA = "https://slsa.dev/provenance/v1"
	// BuildType identifies how Rampart builds images, in provenance.
	BuildType = "https://rampart.dev/buildtypes/image-build/v1"
	// DefaultBuilderID names the builder when EvidenceOptions set none.
	DefaultBuilderID = "https://rampart.dev/builders/image"

	emptyJSONMediaType = "application/vnd.oci.empty.v1+json"
)

// Inventory scans an image for its packages: *scan.Scanner is one.
type Inventory interface {
	ScanImage(ctx context.Context, target string, img *source.ImageSource, o scan.Options) (*report.Report, error)
}

var _ Inventory = (*scan.Scanner)(nil)

// Source is the commit an image was built from.
type Source struct {
	// Repository URL (e.g. https://rampart.example/org/app.git).
	Repository string `json:"repository,omitempty"`
	// Commit id.
	Commit string `json:"commit,omitempty"`
	// Ref built (refs/heads/main), when known.
	Ref string `json:"ref,omitempty"`
}

// EvidenceOptions describe the build for its provenance.
type EvidenceOptions struct {
	// Scanner inventories the image for the SBOM (required).
	Scanner Inventory
	// Name of the image (its repository, e.g. registry/org/app), the
	// subject's name in provenance and the SBOM.
	Name string
	// Source commit built.
	Source Source
	// BuilderID identifies the builder (default DefaultBuilderID); a
	// pipeline passes its runner's identity.
	BuilderID string
	// InvocationID identifies this build: the pipeline run.
	InvocationID string
	// Started and Finished bound the build (recorded when set).
	Started, Finished time.Time
	// ToolVersion is Rampart's version, recorded in the SBOM.
	ToolVersion string
}

// Evidence is what Rampart records about every image it builds.
type Evidence struct {
	// Subject is the image the evidence is about.
	Subject v1.Descriptor
	// SBOM is a CycloneDX 1.6 JSON document.
	SBOM []byte
	// Provenance is an in-toto Statement v1 with a SLSA v1 predicate.
	Provenance []byte
}

// Statement is an in-toto Statement v1 with the SLSA provenance predicate.
type Statement struct {
	Type          string            `json:"_type"`
	Subject       []StatementTarget `json:"subject"`
	PredicateType string            `json:"predicateType"`
	Predicate     Provenance        `json:"predicate"`
}

// StatementTarget is a subject of a statement.
type StatementTarget struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Provenance is the SLSA v1 provenance predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built and from what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	InternalParameters   map[string]string    `json:"internalParameters,omitempty"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
}

// ExternalParameters are the inputs a user controls.
type ExternalParameters struct {
	Source     Source            `json:"source"`
	Dockerfile string            `json:"dockerfile"`
	Target     string            `json:"target,omitempty"`
	BuildArgs  map[string]string `json:"buildArgs,omitempty"`
	Platform   string            `json:"platform"`
}

// ResourceDescriptor is a material.
type ResourceDescriptor struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
	Name   string            `json:"name,omitempty"`
}

// RunDetails say who built it and when.
type RunDetails struct {
	Builder  Builder       `json:"builder"`
	Metadata BuildMetadata `json:"metadata"`
}

// Builder identifies the build platform.
type Builder struct {
	ID string `json:"id"`
}

// BuildMetadata identifies the invocation.
type BuildMetadata struct {
	InvocationID string     `json:"invocationId,omitempty"`
	StartedOn    *time.Time `json:"startedOn,omitempty"`
	FinishedOn   *time.Time `json:"finishedOn,omitempty"`
}

// MakeEvidence scans the built image for an SBOM and writes its SLSA v1
// provenance.
func MakeEvidence(ctx context.Context, res *Result, o EvidenceOptions) (*Evidence, error) {
	if o.Scanner == nil {
		return nil, apperr.E(apperr.Internal, "evidence: no scanner")
	}
	desc, err := partial.Descriptor(res.Image)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "describe the image")
	}
	name := o.Name
	if name == "" {
		name = "image"
	}
	src, err := source.FromImage(res.Image, source.ImageOptions{})
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "open the built image")
	}
	rep, err := o.Scanner.ScanImage(ctx, name+"@"+res.Digest.String(), src, scan.Options{Kinds: scan.Kinds{Deps: true}, Now: func() time.Time { return epochOf(res) }})
	if err != nil {
		return nil, err
	}
	var sb bytes.Buffer
	if err := sbom.CycloneDX(&sb, rep, sbom.Options{Name: name, Version: res.Digest.String(), Created: epochOf(res), ToolVersion: o.ToolVersion}); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "write the SBOM")
	}

	st := Statement{
		Type:          StatementType,
		Subject:       []StatementTarget{{Name: name, Digest: map[string]string{res.Digest.Algorithm: res.Digest.Hex}}},
		PredicateType: PredicateSLSA,
	}
	p := &st.Predicate
	p.BuildDefinition.BuildType = BuildType
	p.BuildDefinition.ExternalParameters = ExternalParameters{
		Source:     o.Source,
		Dockerfile: res.Dockerfile,
		Target:     res.Target,
		BuildArgs:  maps.Clone(res.BuildArgs),
		Platform:   res.Platform.String(),
	}
	deps := []ResourceDescriptor{}
	if o.Source.Commit != "" {
		uri := o.Source.Repository
		if uri != "" {
			uri = "git+" + uri + "@" + o.Source.Commit
		}
		deps = append(deps, ResourceDescriptor{URI: uri, Digest: map[string]string{"gitCommit": o.Source.Commit}, Name: "source"})
	}
	for _, m := range res.Materials {
		deps = append(deps, ResourceDescriptor{URI: m.URI, Digest: map[string]string{m.Digest.Algorithm: m.Digest.Hex}})
	}
	p.BuildDefinition.ResolvedDependencies = deps
	p.RunDetails.Builder.ID = o.BuilderID
	if p.RunDetails.Builder.ID == "" {
		p.RunDetails.Builder.ID = DefaultBuilderID
	}
	p.RunDetails.Metadata.InvocationID = o.InvocationID
	if !o.Started.IsZero() {
		t := o.Started.UTC()
		p.RunDetails.Metadata.StartedOn = &t
	}
	if !o.Finished.IsZero() {
		t := o.Finished.UTC()
		p.RunDetails.Metadata.FinishedOn = &t
	}
	prov, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "write the provenance")
	}
	return &Evidence{Subject: *desc, SBOM: sb.Bytes(), Provenance: prov}, nil
}

func epochOf(res *Result) time.Time {
	if cf, err := res.Image.ConfigFile(); err == nil {
		return cf.Created.Time
	}
	return time.Unix(0, 0).UTC()
}

// ParseStatement reads a provenance statement (for checks and tests).
func ParseStatement(data []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "not an in-toto statement")
	}
	if st.Type != StatementType || st.PredicateType != PredicateSLSA {
		return nil, apperr.E(apperr.Invalid, "not a SLSA v1 provenance statement")
	}
	return &st, nil
}

// Referrers returns the evidence as OCI artifact manifests whose subject is
// the image: the SBOM first, then the provenance.
func (ev *Evidence) Referrers() ([]v1.Image, error) {
	var out []v1.Image
	for _, a := range []struct {
		typ  string
		data []byte
	}{{ArtifactTypeSBOM, ev.SBOM}, {ArtifactTypeProvenance, ev.Provenance}} {
		img, err := newArtifact(a.typ, a.data, ev.Subject)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// artifact is an OCI artifact manifest: an empty config, one blob, a
// subject.
type artifact struct {
	manifest []byte
	blob     v1.Layer
}

var emptyJSON = []byte("{}")

func newArtifact(typ string, data []byte, subject v1.Descriptor) (v1.Image, error) {
	blob := static.NewLayer(data, types.MediaType(typ))
	bd, err := blob.Digest()
	if err != nil {
		return nil, err
	}
	ed, _, _ := v1.SHA256(bytes.NewReader(emptyJSON))
	sub := v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  typ,
		Config:        v1.Descriptor{MediaType: emptyJSONMediaType, Size: int64(len(emptyJSON)), Digest: ed},
		Layers:        []v1.Descriptor{{MediaType: types.MediaType(typ), Size: int64(len(data)), Digest: bd}},
		Subject:       &sub,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, blob: blob})
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return slices.Clone(emptyJSON), nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, _ := a.blob.Digest(); d == h {
		return a.blob, nil
	}
	if ed, _, _ := v1.SHA256(bytes.NewReader(emptyJSON)); ed == h {
		return static.NewLayer(emptyJSON, emptyJSONMediaType), nil
	}
	return nil, apperr.E(apperr.NotFound, "no blob %s in the artifact", h)
}
