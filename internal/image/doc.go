// Package image builds OCI images without a container runtime, and records
// evidence of every build.
//
// # Concepts
//
// A build reads a Dockerfile of a subset that needs no container: FROM
// (with AS names, --platform and scratch), COPY (--from, --chown, --chmod),
// ADD of local files and local tar archives, ENV, ARG, WORKDIR, USER,
// EXPOSE, LABEL, ENTRYPOINT and CMD, with line continuations, comments,
// parser directives (escape, syntax, check) and variable expansion ($VAR,
// ${VAR}, ${VAR:-word}, ${VAR:+word}, ${VAR:?message}). RUN and the other
// instructions are refused at parse time with an error that names the
// supported subset and, for RUN, suggests a pipeline step: the pipeline
// runs commands in its own containers and the image build copies their
// output.
//
// Base images come from a BaseResolver: the default Resolver reads OCI
// layouts (oci-layout:DIR[:TAG|@DIGEST]), image tarballs (tarball:FILE)
// and any registry, with basic or bearer-token authentication through
// go-containerregistry's authn.
//
// Builds are reproducible: every COPY or ADD becomes one layer whose tar
// entries are sorted, carry the build's epoch (SOURCE_DATE_EPOCH, else
// 1970-01-01) as their time, numeric owners only (root, or --chown), and
// are compressed by the same gzip settings; the image config carries the
// same epoch. The same context, Dockerfile, arguments and bases give the
// same digest, whatever the files' modification times.
//
// # Lifecycle
//
//	res, err := image.Build(ctx, image.BuildOptions{ContextDir: dir})
//	ev, err := image.MakeEvidence(ctx, res, image.EvidenceOptions{Scanner: s, Source: src, InvocationID: run})
//	pushed, err := image.Push(ctx, res.Image, "registry.example/org/app:1.0", ev, image.PushOptions{Auth: auth})
//	// or: image.WriteLayout(dir, "1.0", res.Image, ev)
//	_, err = image.Sign(ctx, pushed.Image, key, image.PushOptions{Auth: auth})
//
// Build reads the Dockerfile, indexes the context (honouring
// .dockerignore, within Limits), resolves bases, and evaluates the stages up
// to the target in memory; nothing is written until Push or WriteLayout,
// so a refused build leaves no partial output. MakeEvidence scans the built
// image with the scanner (package scan) for a CycloneDX SBOM and writes
// SLSA v1 provenance (an in-toto Statement naming the image digest, the
// source repository and commit, the Dockerfile, the build arguments, the
// base image digests, the builder and the pipeline run). Push attaches both
// as OCI referrers (artifact manifests with a subject); WriteLayout stores
// them in the layout and as plain files beside it. Sign adds a signature
// in cosign's format (sha256-<digest>.sig) that `cosign verify --key`
// accepts.
package image
