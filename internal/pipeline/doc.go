// Package pipeline runs CI pipelines defined in a repository's
// .rampart/pipeline.yaml.
//
// # Concepts
//
// A Definition (Parse) is the validated file: triggers, stages, jobs with
// their needs (a DAG), conditions, environment, matrix, timeouts, limits,
// secret references, artifacts, caches and steps — `run` commands and the
// built-in scan, build-image, push-image, sign and sbom steps. Every
// problem is reported with its line (Errors).
//
// A Run is one execution of a definition at a commit, numbered per
// repository; its jobs (JobRun, one per matrix combination) and their
// steps live in the store (tables pipeline_runs, pipeline_jobs,
// pipeline_steps), so nothing is lost across restarts.
//
// An Executor runs a job's commands: containerexec through runc (package
// container), hostexec as plain, unisolated processes. Remote runners
// (package runner, `rampart runner`) take jobs over HTTPS with their own
// executor.
//
// # Lifecycle
//
//  1. Trigger: the scm.push and scm.pull_request events (Subscribe; one run
//     per event, so redelivery is harmless), StartManual, Rerun, or a due
//     schedule. The definition is read from the commit in the bare
//     repository with git; triggers and filters are applied; an invalid
//     definition or an unresolvable secret records a failed run with the
//     reason. A run is queued with its jobs pending, and a pending status
//     check (StatusContext) is posted to the commit.
//  2. Schedule (Run's loop, woken on every change and each second): a
//     pending job whose needs have all finished is queued when its
//     condition holds (by default: all needs succeeded), else skipped;
//     a run whose jobs have all finished succeeds or fails, and its check
//     is updated.
//  3. Execute: local workers claim queued jobs (atomically, within the
//     server's and the project's limits); the job gets a size-limited
//     workspace with the commit checked out, its secrets from the
//     SecretSource, and a log (blob store) behind a Masker and a size
//     limit; each step runs (or is skipped by its condition) until one
//     fails; artifacts and caches are saved; the job's end is recorded.
//     Timeout, cancel (Cancel) and the log limit kill the job's processes.
//  4. Restart: Run first marks every job that was running failed with
//     ReasonRestart (their runs fail with it); queued jobs resume.
//
// Logs are readable while they grow and stream as server-sent events
// (the API's ?follow=1, the run page's script, `rampart pipeline logs -f`).
//
// # Collaborators
//
// Repos is scm.Service. SecretSource (the vault) and ImageBuilder
// (package pipeline/imagesteps, on top of package image and the registry)
// are declared here and may be nil: runs referencing secrets are then
// refused ("no secret source configured") and image steps fail.
package pipeline
