// Package policy is Rampart's policy as code: gates at every step of the
// delivery loop, decided by policies written in Rego v1 and evaluated by
// embedded OPA, with modes, exceptions, a decision log and a Kubernetes
// validating admission webhook.
//
// # Gates
//
// A Gate is a point of the loop where policy decides: pre-merge (a pull
// request), image (an image on push and pull), pre-deploy (a release
// and its target environment), iac-plan (an OpenTofu/Terraform plan in
// JSON), admission (a Kubernetes AdmissionReview v1) and runtime (what
// runs in an environment, checked periodically). Each gate has an input
// document with a JSON Schema (schemas/, served at
// /api/v1/policy/gates/{gate}/schema); an input that does not fit is
// refused with the field at fault before any policy runs. Callers use
// Service.Decide (Go) or POST /api/v1/orgs/{org}/policy/decisions (HTTP)
// and get a Decision: allow, the reasons for a denial with what to
// change, warnings, and what was audited or set aside.
//
// # Policies and bundles
//
// A policy is one Rego module in package rampart.gates.<gate>.<name>
// declaring a literal `metadata` object (id, title, remediation and
// optionally a default mode) and a multi-value rule `deny` whose
// elements are strings or objects with a message and optionally a fix,
// the ids the violation is known by (advisory ids), an image, a
// resource, a path or a fingerprint: what exceptions are matched on.
// Modules outside rampart.gates are helpers; files ending in _test.rego
// are Rego unit tests (RunTests, `rampart policy test`).
//
// Policies come in Bundles from Sources: the built-in library embedded
// in the binary (Builtin, always loaded first), a directory (Dir) and a
// git repository read at a ref with the git binary, without a checkout
// (Git; the org's policy repository in Rampart's git hosting). Each
// bundle may carry a policy.yaml (settings the policies read as
// data.rampart.config.settings, and mode rules) and an exceptions.yaml.
// A bundle's Revision names its exact content (the commit for git), and
// every decision records the revisions it was made with.
//
// # Engine and lifecycle
//
// NewEngine parses every bundle, checks each policy's contract,
// compiles all modules together (without the built-ins that reach the
// network or the process environment) and prepares, once, one query per
// gate that evaluates all of its policies; an Engine is immutable and
// shared by every caller. A module that does not parse or compile is
// refused with its file and line. New builds the Service's first engine
// and fails when it cannot; Service.Run reloads the sources every reload
// interval and switches to a new engine only when it compiles (a broken
// revision is reported in Status and audited, and the previous engine
// keeps deciding). Service.Close flushes the decision log.
//
// # Modes and exceptions
//
// Each policy runs in a Mode per environment: enforce (a violation
// denies), warn (shown, allowed) or audit (only recorded). Its metadata
// sets the default; the mode rules of policy.yaml change it by policy
// id and environment glob, the last matching rule winning. A policy that
// cannot be evaluated (a runtime error, the timeout) counts as a
// violation in its mode: under enforce the gate fails closed.
//
// Exceptions are package exception's one object — owner, reason, scope
// (id, fingerprint, paths, repository, image, environment) and expiry —
// the same that .rampart/ignore.yaml holds for the scanner. They come
// from bundles' exceptions.yaml and from the org exceptions stored in the
// database (API, CLI, the org's exceptions page). A violation an
// exception in force matches goes to Decision.Excepted; one matched only
// by an expired exception still counts and is reported in
// Decision.Expired.
//
// # Decision log
//
// Service.Decide records every decision — gate, subject, environment,
// input digest, revision, outcome, reasons, caller and time — through a
// group committer before returning it (a few writers, each gathering
// the decisions queued within 2 ms, up to 512, into one transaction; a
// bounded queue whose callers wait for room rather than lose a decision,
// and fail closed when their context ends first; Close writes what is
// queued); decisions are listed per org and
// per subject (a pull request, a run, an image, a release) by the API,
// the CLI and the pages, and purged after the retention period. Reloads
// and exception changes go to the audit log.
// Service.Evaluate is the same without recording (a dry run).
//
// # Kubernetes
//
// Service.Admit answers an AdmissionReview v1 sent by a
// ValidatingWebhookConfiguration to /api/v1/orgs/{org}/admission/{env}
// (authenticated by a service account's policy:decide token): a denial
// carries every reason, warnings become Kubernetes warnings, and the
// decision id is an audit annotation. The review is decoded once. The
// policies see it without the fields that change from one review of the
// same object to the next — the request uid, the object's uid,
// resourceVersion, managedFields and creationTimestamp, and a name the
// API server generated from generateName — so the replicas of a
// ReplicaSet, the resyncs of a controller and repeated applies are the
// same input, and the engine keeps each input's policy results (bounded,
// one cache per engine, so a reload starts afresh; errors are not kept;
// modes and exceptions are applied on every decision). CheckRuntime and WatchRuntime
// judge what runs in an environment at the runtime gate, listing it
// through the Workloads interface (package kubeworkloads for a cluster).
package policy
