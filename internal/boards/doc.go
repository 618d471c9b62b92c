// Package boards plans work the way Azure Boards does: work items on a
// Kanban board, linked to the commits and pull requests that mention them.
//
// # Work items
//
// A work item belongs to an org and is numbered per org: the first item of
// an org is AB#1, the next AB#2, and a number is never reused, even after
// the item is deleted. An item may name one of the org's projects (its
// area), which the board filters on; authorisation is at org level all the
// same (readers see items, developers create and edit them, maintainers
// delete them), so a project grant alone does not open the board.
//
// An item has a type — epic, story, bug or task — a title, a description,
// a priority from 1 (highest) to 4, an optional assignee (a member of the
// org) and an optional parent. Parents follow the hierarchy epic → story or
// bug → task, which also rules out cycles. Its state moves through
//
//	New → Active → Resolved → Closed
//
// on the board; any move is allowed (reopening a closed bug is normal), and
// each change is recorded in the audit log.
//
// # Links from code
//
// The package subscribes to the events scm publishes. A commit message
// pushed to any branch, or a pull request's title or body, that mentions
// AB#12 links item 12 of the repository's org (see ParseRefs). A mention
// after a closing keyword — "Fixes AB#12", "closes AB#3, AB#4" — resolves
// the item once it reaches the default branch: in a push to the default
// branch, or in a pull request merged into it. Events arrive at least once;
// links are stored once per item and commit (or pull request), and a
// mention resolves an item at most once, so a redelivered event neither
// duplicates a link nor undoes a later reopening. Mentions of numbers the
// org does not have are ignored: an org's mentions never reach another
// org's items.
//
// Security alerts (package alerts) create work items linked both ways
// through CreateLinkedTx.
package boards
