// Package kubetarget is deploy's Kubernetes target: it turns a release
// into Deployments, Services and Secrets, applies them with server-side
// apply (client-go) in the environment's one namespace, through the
// environment's service connection (a namespaced service account's
// token), carries out the rollout strategy and rolls back when a step
// fails. No service mesh is needed.
//
// # Objects
//
// Objects are named after the project (a DNS label, NAME below) and
// labelled app.kubernetes.io/name=NAME and
// app.kubernetes.io/managed-by=rampart. A project has up to four
// Deployments: NAME (the main one, which rolling and recreate update in
// place and canaries are promoted to), NAME-blue and NAME-green
// (blue-green colours) and NAME-canary. Each pod carries
// rampart.dev/deployment=<its Deployment>, and the Service NAME selects
// one Deployment through that label, so which release serves is read
// from the Service's selector; the Deployments carry the release's
// number, digest and id as annotations. Every Deployment has its own
// Secret (<Deployment>-secrets) holding the values of the release's
// secret references, read through secretKeyRef, so two releases running
// side by side keep their own values and none appear in a Deployment;
// NAME-pull is the registry pull secret. Pods run as a non-root user
// with a read-only root filesystem, no privilege escalation, every
// capability dropped and the runtime's default seccomp profile.
//
// # Strategies
//
// recreate and rolling update NAME in place (Kubernetes' Recreate and
// RollingUpdate with one extra pod at a time, none unavailable), then
// the Service selects NAME and any other Deployment is scaled to zero;
// the hook is called once, at 100 %.
//
// blue_green starts the release at full strength as the colour the
// Service does not select, waits until it is available, points the
// optional preview Service NAME-preview at it, calls the hook (step 1/2,
// 0 %), switches the Service's selector, calls the hook (step 2/2,
// 100 %), and after the strategy's pause scales the old colour to zero.
//
// canary starts the release as NAME-canary beside the stable Deployment
// (the one the Service selects). Without Rampart's gateway in front the
// Service selects both and each step's weight becomes a replica ratio
// (Split); when the environment has a host and Rampart runs a gateway,
// the Services NAME-stable and NAME-canary get the route's weights and
// the stable Deployment stays at full strength. The hook is called at
// every step, then the strategy's pause; the last step (100 %) promotes
// the release to NAME and scales the others to zero.
//
// # Failure, rollback and restarts
//
// A failed step — the hook says no, pods that cannot be created
// (ReplicaFailure, such as a quota), a rollout past its progress
// deadline or the environment's health timeout — ends in settle for the
// previous release: the Deployment already running it (the one the
// Service selects first) is brought back to full strength, the Service
// and the gateway route point at it and every other Deployment is
// scaled to zero. A colour scaled down earlier is scaled up again, so
// a rollback to the release before is a selector switch. Recover (after
// Rampart stopped mid-rollout) settles the previous release the same
// way, and Ensure settles the current one when it does not serve alone
// at full strength.
//
// A release may instead carry the project's own manifests
// (Release.Config.Manifests): they are applied as they are, with
// ${IMAGE} replaced by the image by digest, every object put in the
// environment's namespace and cluster-scoped kinds refused; the
// Deployment named like the project is the one whose rollout is
// watched, and strategies do not apply.
//
// Before it changes anything the target checks, with a
// SelfSubjectAccessReview, that the connection's token cannot list
// namespaces cluster-wide: a cluster-admin credential is refused.
package kubetarget
