// Package scm hosts git repositories: their metadata and bare directories
// on disk, git over smart HTTP (package githttp) and SSH (package gitssh)
// served by the git binary, branch protection, push protection, pull
// requests, status checks and webhooks.
//
// # Repositories
//
// A repository belongs to an org (ORG/NAME, unique in the org) and
// optionally to one of its projects. Permissions come from authz: the
// project's grants when the repository has a project, the org roles
// otherwise — readers clone and read pull requests, developers push, open,
// review and merge pull requests and post status checks, maintainers
// change settings, protection and webhooks, owners delete. A repository
// marked public may be cloned and read by anyone, even anonymously. Names
// follow identity.ValidateName (no "..", no control characters, nothing
// that reads as a path) and may not end in ".git".
//
// Each repository is a bare directory made by `git init --bare`, at
// ROOT/ORG_ID/REPO_ID.git (ids, not names: a rename or a re-created name
// never meets an old directory). Other components read it there through
// Path and Locate, never writing to it.
//
// # Pushes
//
// A push runs `git receive-pack` with core.hooksPath pointing at
// Rampart's hook scripts and file descriptor 3 connected to this process
// by a socket pair. The pre-receive hook (a POSIX shell script) sends the
// ref updates, the push options and receive-pack's quarantine directory
// to the server and prints the answer for the git client; the checks run
// here, in Go:
//
//  1. the repository is locked for this replica, so two pushes to one
//     branch are decided one after the other: the second sees that the
//     branch moved and is told to fetch first;
//  2. branch protection: no deletion, no force push, pull request
//     required, required status checks on the new commit, commits signed
//     with a registered SSH key (git verify-commit);
//  3. push protection: the secret engine of package scan reads only the
//     blobs the push brings (scan/source.Git over a throwaway git directory
//     whose object store chains the quarantine and the repository, with
//     Include the new values, Exclude the old ones and every existing ref
//     excluded); a secret refuses the push with its file, line, rule and
//     commit and how to fix it, unless the push carries
//     `-o secret-bypass="reason"`, which is audited, published as
//     scm.secret_bypass and handed to the BypassAlerter and LeakHandler.
//
// Only after every check passes does receive-pack move the refs; the
// post-receive hook then records each updated ref (audit entry, scm.push
// event, pull requests whose branch moved) in one transaction. Pack size
// is capped (receive.maxInputSize) and objects are checked
// (receive.fsckObjects), so oversized or malformed packs are refused by
// git itself with nothing written.
//
// # Pull requests
//
// A pull request proposes merging a head branch into a base branch of the
// same repository; refs/pull/N/head keeps its head reachable. Reviews
// approve, request changes or comment; approvals of an older head are
// dismissed when protection says so. MergeStatus runs a trial merge (git
// merge-tree, nothing written) for conflicts and lists what protection and
// the MergeGates still require. Merge writes the merge, squash or rebased
// commits with git plumbing and moves the base branch only from where the
// checks saw it.
//
// # Events (the stable contract)
//
// Published inside the transaction that records the change:
//
// scm.push, for every ref a push (or a merge) moved:
//
//	{"repo": "ORG/NAME", "repo_id": 7, "ref": "refs/heads/main",
//	 "before": "<40 hex, zeros for a new ref>", "after": "<40 hex, zeros when deleted>",
//	 "default_branch": true, "pusher": "username",
//	 "commits": [{"id", "message", "author_name", "author_email", "timestamp"}]}
//
// commits are those new to the repository (for a merge: those the base
// branch gained), oldest first and newest last, at most the newest 100.
//
// scm.pull_request:
//
//	{"action": "opened|edited|synchronized|closed|reopened|merged",
//	 "repo": "ORG/NAME", "repo_id": 7, "number": 3, "title", "body",
//	 "base": "main", "head": "feature", "head_sha", "merge_commit" ("" unless merged),
//	 "author": "username", "url": "https://…/orgs/ORG/repos/NAME/pulls/3", "sender": "username"}
//
// scm.secret_bypass: {"repo", "repo_id", "pusher", "reason", "at",
// "findings": [{"rule_id", "title", "path", "line", "commit", "fingerprint"}]}
// — never the secret itself.
//
// # Webhooks
//
// Webhooks of a repository or of a whole org receive GitHub-compatible
// push and pull_request payloads (X-GitHub-Event, X-GitHub-Delivery,
// X-Hub-Signature-256 = HMAC-SHA256 of the body under the webhook's
// secret, which is stored sealed). A subscriber of the event bus turns
// each event into one delivery per webhook (at most once per event, even
// when the bus delivers it twice); a sender loop posts due deliveries,
// retrying failures with a growing backoff (10 s, then ×3) up to a number
// of attempts; every attempt's status, time and error is kept in the
// delivery log, and any delivery can be sent again.
package scm
