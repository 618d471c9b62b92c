// Package vault keeps secrets and signing keys (the Key Vault of the
// reference architecture) and hands them to applications at run time,
// away from developers.
//
// # Secrets
//
// A secret lives in a scope — an org, a project of it, or an environment
// of a project — and is named ORG/NAME, ORG/PROJECT/NAME or
// ORG/PROJECT/ENV/NAME (Ref). Every write makes a new version; any
// version can be read while it is not deleted or destroyed, and Rollback
// makes an old value current again as a new version. Metadata (owner,
// creation, rotation, expiry, leak) is kept apart from values, and values
// are a type of their own (Value) that never prints, so they stay out of
// lists, logs, errors and audit entries.
//
// # Envelope encryption
//
// Each version is sealed with AES-256-GCM under a fresh data key; the data
// key is wrapped by the key-encryption key (keyring.KEK: key files, an
// argon2id passphrase, or HashiCorp Vault Transit). The secret's immutable
// id and the version number are the associated data of both, so a
// ciphertext moved to another secret or version does not open. Rotating
// the KEK (RotateKEK) makes a new version current and re-wraps every data
// key online; old versions stay until nothing needs them, so a crash at
// any point leaves every value readable, and Run resumes the re-wrap.
//
// # Access
//
// Roles (authz) decide who manages secrets: listing metadata needs reader,
// writing, rotating and rolling back maintainer, policies owner. Reading a
// value needs, in addition, a vault policy that grants that secret to the
// reader: a user, a team, a pipeline (project + branch + environment) or a
// deployment (project + environment). Without one nobody reads a value,
// not even an org owner (default deny). Every read attempt is audited with
// who read, what, which version and on whose behalf.
//
// # Lifecycle
//
// New opens the vault's own keys through the KEK (failing fast on a wrong
// or missing one). Writes are group-committed (one fsync per batch, led by
// the first waiting write: see committer.go). With Deps.ReadAuditJournal
// a read's audit entry goes to that journal before the value is returned
// and reaches the log within 100 ms in the committer's batches
// (audit.Journal); without it each read waits for its entry's commit.
// Reads of a hot secret skip their query through the read cache
// (readcache.go), which every write committed here empties before it
// returns and which forgets an entry after a second (other replicas'
// writes). Run does the background work
// until its context ends; Close commits the journal's pending entries.
package vault
