// Package imagesteps carries out the image steps of pipeline jobs
// (build-image, push-image, sign, sbom, deploy): it implements
// pipeline.ImageBuilder on top of package image and Rampart's registry.
//
// # Concepts
//
// A job's image steps share state through the job's workspace and through
// the Builder's memory of the job (keyed by run, job and workspace):
//
//   - build-image builds the Dockerfile of the job's checkout without a
//     container runtime (image.Build), makes its evidence (a CycloneDX SBOM
//     from the scanner, SLSA v1 provenance naming the repository, commit,
//     ref, the run's URL as invocation id and Rampart as builder) and
//     writes both as an OCI layout at .rampart/images/TAG in the workspace
//     (TAG with '/' and ':' turned into '_'). The Builder remembers the
//     digest and the evidence.
//   - push-image reads the layout back, checks it still holds the digest
//     build-image made (later `run` steps may write to the workspace, but
//     cannot swap the image), and pushes it with its SBOM and provenance
//     as OCI referrers. A destination on this Rampart's registry (the host
//     of its public URL) is reached with a registry token minted for the
//     run's actor, limited to that one repository, pull and push, and
//     expiring with the job; the registry checks and audits the push as
//     any other. Other registries are reached only by jobs with
//     `network: true`, with REGISTRY_USERNAME and REGISTRY_PASSWORD from
//     the job's environment (declare them under `secrets:`), or none.
//   - sign signs a digest this job pushed: with the registry's own key
//     (registry.Service.SignImage, after checking the actor may push to the
//     repository) when `key` is empty, else with the PEM ECDSA P-256 key in
//     the job environment variable `key` names (a secret).
//   - sbom writes the CycloneDX SBOM of an image this job built to
//     .rampart/sbom/TAG.cdx.json in the workspace, for `artifacts:`.
//   - deploy resolves its image to a digest this job pushed to Rampart's
//     registry (or takes HOST/REPOSITORY@sha256:… of that registry) and
//     hands it with the run to the Deployer (the wiring: the run's user,
//     with a credential limited to deploying in the run's project, waits
//     for the registry's scan, records the release and deploys it through
//     package deploy, following it in the job's log).
//
// Base images come from oci-layout: and tarball: paths of the workspace,
// from Rampart's registry (with a pull token for the run's actor) and,
// for jobs with `network: true`, from other registries anonymously.
// Paths (context, dockerfile, local bases) must stay inside the
// workspace, symbolic links included, and the steps write only into real
// directories of it. Errors are user-safe messages for the job log;
// credentials never appear in them.
//
// # Lifecycle
//
// internal/app builds one Builder (New) and hands it to the pipeline
// service (SetImages). The pipeline calls ImageStep for every image step
// of every job; the Builder forgets the oldest jobs beyond MaxJobs.
package imagesteps
