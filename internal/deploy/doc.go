// Package deploy is Rampart's continuous delivery (Pipelines CD and the
// AKS deployments of the reference architecture): environments with
// protection rules, service connections, immutable releases,
// deployments with approvals and policy gates, rollout strategies and
// rollback, on two kinds of target: the node runtime (OCI containers
// through runc on this machine, package noderuntime) and Kubernetes
// (package kubetarget).
//
// # Concepts
//
// An Environment (dev, staging, production, …) belongs to a project. Its
// Protection says what a deployment there needs: a number of approvals
// (from named approvers, or any project maintainer, never the person who
// asked), the policy gates that must allow it besides pre-deploy, the
// source branches its releases may come from, and the weekly windows
// (UTC) when deployments may start. Its TargetSpec says where and how
// releases run: node or kubernetes, replicas, port, health check,
// resource limits, the rollout Strategy and the gateway host routed to
// it. A Kubernetes environment has a service Connection: the API
// server, one namespace and a namespaced service account's token,
// sealed at rest with the keyring and never shown again.
//
// A Release is immutable: an image by digest, its configuration
// (environment variables, command), references to vault secrets (never
// values), the source commit, branch, repository, pull request and work
// items, who recorded it, when and why. Promotion deploys the same
// release to the next environment: the digest is reused, nothing is
// rebuilt.
//
// # Lifecycle of a deployment
//
// Deploy checks the release's branch and the environment's windows
// (refusing at once), then asks the pre-deploy gate and the required
// gates (Gate, wired to package policy; a gate that fails to answer
// denies). A denied deployment is recorded with the decisions and
// refused. Otherwise it waits for approvals (awaiting_approval; a
// rejection ends it, and one that waits longer than the approval
// timeout expires) or is queued. Run claims queued deployments one at a
// time per environment, resolves the release's secret references
// (Secrets, wired to the vault), and hands a Plan to the environment's
// Target, with the deployer in the context (Puller): the wiring pulls
// images from Rampart's registry with a pull-only token minted for that
// person. The target carries out the strategy — recreate, rolling,
// blue_green, or canary with gateway weights and pauses — calling the
// Hook after every step (release analysis plugs in there); a failed
// start, a failed health check, a crash loop or a failed hook rolls the
// release back, and the deployment ends rolled_back with the previous
// release running, or failed when there was none. The environment
// records its current and previous release; Rollback deploys the
// previous one again.
//
// A deployment that waited (for approvals, or over a minute in the queue)
// asks the gates again right before its rollout, with the evidence of
// then (gateBeforeRollout): both answers stay on the deployment, the
// second ones with Stage StageBeforeRollout, and a denial now ends it
// denied before the target is touched.
//
// Pipelines deploy through DeployAndWait: it records the release of the
// image a job pushed, asks for its deployment like the API does, and
// follows it until it ends, reporting each step to the job's log; when
// the step stops waiting (its approval timeout, the job's end) a
// deployment that has not started is given up (expired).
//
// A rotation of a vault secret, in a project that asks for it, reaches
// RestartUsing: every environment whose running release references the
// secret gets a new deployment of that same release (strategy rolling,
// audited as deploy.deployment.restart), which targets implementing
// Restarter carry out by replacing instances one at a time with fresh
// ones that read the new value.
//
// # Rollout journal and crashes
//
// A rollout writes its durable steps to the deployment's journal
// (deploy_rollout_journal, JournalEntry): instances started, traffic
// routed, a step's check passed, the commit point, old instances
// stopped, a rollback begun. The commit point (JournalCommitted) is
// written once every step's check has passed and before the previous
// release's instances are stopped; failing to write it fails the
// rollout.
//
// When Rampart stops — gracefully, or killed with SIGKILL — in the
// middle of a rollout, the deployment stays running in the store. At
// the next start Run first settles it, deciding by the journal
// (Committed): a rollout past its commit point is completed (its
// release passed every check; the node target keeps its instances,
// starts missing ones, routes all traffic to it and stops the previous
// release), any other is rolled back (the previous release is brought
// back to full strength and gets all the traffic, then the new
// release's instances are stopped). Either way the deployment ends
// succeeded or rolled_back with a message saying that Rampart stopped
// and what was done, the journal ends with a JournalRecovered entry,
// and the environment records which release runs. Settling is
// idempotent: a crash during it is settled again at the next start.
// Then every environment's current release is made to run: instances
// that survived are kept, missing ones are started, duplicates are
// stopped.
//
// Tests reach exact steps with test-only pause points: when the
// environment variable RAMPART_TEST_DEPLOY_PAUSE names one
// (rolling:first-replica, blue_green:switched, blue_green:committed,
// canary:pause, rollback:routed), the node target creates the file named by
// RAMPART_TEST_DEPLOY_PAUSED there and waits until Rampart stops. Never
// set them outside tests.
//
// Every change is audited: deploy.environment.create/update/delete,
// deploy.connection.set/delete, deploy.release.create,
// deploy.deployment.create (with the gate decisions, denied ones
// included), .approve, .reject, .expire, .succeed, .fail, .gate (the
// gates asked again before a rollout), .restart, and deploy.rollback.
package deploy
