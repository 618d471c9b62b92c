// Package audit keeps Rampart's append-only, hash-chained audit log.
//
// Every security-relevant action — sign-in success and failure, MFA
// enrolment and removal, token creation and revocation, role changes, client
// registration, … — is appended as an Entry: who acted (actor), what they did
// (action, outcome), to what (target), in which org, from where (source IP,
// user agent) and in which request (request id).
//
// Entries are numbered without gaps (seq 1, 2, …). Each stores the hash of
// the previous entry and its own hash over all its fields, and a one-row head
// table holds the last seq and hash. Verify walks the chain and names every
// entry that was edited (its hash no longer matches), deleted (a gap, or a
// head that points past the end) or re-linked. Anyone who can rewrite the
// database can also recompute the chain, so keep an exported head hash
// (`rampart audit verify` prints it) somewhere else to anchor it.
//
// Appends serialise on the head row, so the chain stays linear with several
// Rampart replicas on one PostgreSQL database. A component that changes state
// appends inside its own transaction (AppendTx), so an action and its entry
// commit together or not at all.
//
// A Journal records entries of actions that change nothing but must be
// recorded before they are answered (the vault's secret reads): Append
// writes the entry to a local file and a goroutine commits the file's
// entries in batches gathered for 100 ms; entries a crash left behind are
// appended at the next open, once each.
package audit
