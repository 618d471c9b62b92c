// Package alerts keeps the security alerts of every repository: what the
// scanner (package scan) finds on its default branch — leaked secrets,
// vulnerable dependencies and infrastructure-as-code misconfiguration —
// as GitHub Advanced Security's alerts do.
//
// # Scans
//
// The package subscribes to scm's push events. Every push to a repository's
// default branch has the tree at the pushed commit scanned: the tree is
// written out with `git archive` (regular files only, within size limits,
// confined to a temporary directory) and scanned with scan.Scanner.Dir for
// every kind of finding; .rampart/ignore.yaml in the tree suppresses
// findings as it does for `rampart scan`. A maintainer can also rescan the
// default branch on demand (after the advisory database was updated, say).
// Scans of one repository are applied in order; a scan that finishes after
// a newer one is dropped.
//
// # Lifecycle
//
// An alert is keyed by its repository and the finding's fingerprint, which
// the scanner keeps stable across scans (a secret's fingerprint includes
// its file and position, a dependency's its package, version and
// manifest). After each scan:
//
//   - a finding without an alert opens one;
//   - an open alert whose finding is gone becomes fixed, with the commit
//     that fixed it;
//   - a fixed alert whose finding comes back is reopened (and counted);
//   - a dismissed alert stays dismissed, found or not: a person decided.
//
// A maintainer dismisses an open alert with a reason — false positive,
// won't fix, used in tests — and a comment; a dismissed alert can be
// reopened. Both are written to the audit log, with who, why and which
// finding. A developer can create a work item (package boards) from an
// alert; the alert and the item link to each other.
//
// Alerts belong to the repository's org. Reading them takes a developer
// (they point at secrets and weaknesses), dismissing and rescanning a
// maintainer. The org's security overview counts open alerts by severity
// and by age (since they were last opened) and lists the oldest first.
//
// # Events
//
// Other components (the vault's leak rotation, the monitor) follow alerts
// through the events alerts.opened (new or reopened), alerts.fixed and
// alerts.dismissed, whose payload is an Event: the alert's id, org,
// repository, kind, rule, severity, fingerprint, location and commit.
package alerts
