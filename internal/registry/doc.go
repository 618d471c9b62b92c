// Package registry is Rampart's OCI container registry, served at /v2/ on
// Rampart's listener. It speaks the OCI distribution spec 1.1 (push, pull,
// chunked and resumable uploads, cross-repository mounts, tags, deletes,
// the referrers API with OCI-Subject, sha256 and sha512 digests, manifests
// that list non-distributable layers) with its own router and OCI error
// codes, and adds what a platform registry needs around it: token
// authentication from Rampart identities, permissions through authz, scan
// on push with quarantine, cosign signatures, and hygiene.
//
// # Storage
//
// Blob bytes live in one of the CNCF distribution project's storage
// drivers — the filesystem under the data directory by default, S3 for
// scale-out (chosen by URL in internal/app). Uploads are written under
// /uploads/ID and renamed to /blobs/ALG/HH/HEX once their digest is
// verified, so no partial blob is ever visible. Each byte is hashed once,
// as it arrives (sha256; a sha512 digest re-reads the upload at the end);
// on the filesystem driver (Deps.LocalRoot) the disk writes of an upload
// start while it arrives, and blob GETs go out through a pooled 32 KiB
// buffer (crane pulls fastest from 32 KiB writes: see copyOut).
// Everything else is
// metadata in the store: repositories, which blobs each repository may
// see (links), manifests (their bytes too: they are small), tags,
// subjects for the referrers API, uploads in progress with their sha256
// state, the scan queue, quotas and keys. A manifest may only reference
// blobs linked into its repository, enforced by a foreign key, which is
// what makes garbage collection safe while pushes run: the collector
// removes only links no manifest needs, marks a blob 'deleting' under its
// row lock (after which it cannot be linked) before deleting its content,
// and a new link to a blob without a record first checks its content is
// there. A push that races the collector is told to push again.
//
// # Names and permissions
//
// A repository is ORG/NAME or ORG/PROJECT/NAME[/…]: the first component
// names the org; when the second names one of its projects and more
// components follow, the repository belongs to that project. Pulling needs
// the reader role in the project (org roles count), pushing developer,
// deleting maintainer. Repositories marked public may be pulled
// anonymously.
//
// # Tokens
//
// Clients get a challenge (WWW-Authenticate: Bearer realm=URL/v2/token,
// service=HOST, scope=…), log in at /v2/token with HTTP Basic auth whose
// password is a Rampart token (personal, service account — the registry's
// robot accounts — or an OAuth access token) and receive a short-lived
// registry token (HS256, five minutes) holding the actions authz allowed.
// MintRepositoryToken issues the tokens of pipeline jobs: one repository,
// pull or pull and push. Rampart credentials are also accepted directly on
// /v2/ requests.
//
// # Scan on push and quarantine
//
// Every pushed image (an image manifest whose layers are tar change sets)
// is queued in a table that survives restarts. Run leases jobs, scans the
// image with the scanner (OS and language packages, secrets in layers),
// attaches the report and a CycloneDX SBOM to the image as referrers, and
// asks the Policy (DefaultPolicy: no secret, no critical vulnerability
// with a fix) whether it may be pulled. Until it is scanned, and afterwards
// if the policy says no, pulls get DENIED with the reason (repositories
// may turn quarantine off). When the advisory database changes, every
// image is queued again.
//
// # Signatures
//
// SignImage signs a digest with the registry's ECDSA P-256 key (generated
// at first start and sealed in the store, until the vault holds it: see
// Signer) in cosign's format — a simple-signing payload as a layer of the
// manifest tagged ALG-HEX.sig — so `cosign verify --key` accepts it.
// VerifyImage is the check policy gates call.
//
// # Hygiene
//
// Tags may be made immutable per repository; retention rules (keep the
// last N, keep signed, drop by age) and garbage collection of unreferenced
// blobs run in Housekeeping; storage quotas are per project; a repository
// with an upstream is a pull-through cache of another registry.
package registry
