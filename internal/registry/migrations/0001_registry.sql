-- Repositories map to orgs (ORG/NAME) or projects (ORG/PROJECT/NAME).
-- org_id and project_id are identity's ids, kept without foreign keys:
-- components never depend on each other's tables.
CREATE TABLE registry_repos (
	id {{autoid}},
	name TEXT NOT NULL UNIQUE,
	org_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL DEFAULT 0,
	public BOOLEAN NOT NULL DEFAULT FALSE,
	immutable_tags BOOLEAN NOT NULL DEFAULT FALSE,
	quarantine BOOLEAN NOT NULL DEFAULT TRUE,
	keep_last BIGINT NOT NULL DEFAULT 0,
	keep_signed BOOLEAN NOT NULL DEFAULT FALSE,
	max_age_days BIGINT NOT NULL DEFAULT 0,
	upstream TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX registry_repos_org ON registry_repos (org_id, project_id);
-- Blob content lives in the storage driver; a row exists once the content
-- is complete and verified. state 'deleting' marks a blob the garbage
-- collector is removing: it can be neither linked nor served.
CREATE TABLE registry_blobs (
	digest TEXT PRIMARY KEY,
	size BIGINT NOT NULL,
	state TEXT NOT NULL DEFAULT 'live',
	created_at BIGINT NOT NULL
);
-- A blob is visible in a repository only through a link.
CREATE TABLE registry_repo_blobs (
	repo_id BIGINT NOT NULL REFERENCES registry_repos(id) ON DELETE CASCADE,
	digest TEXT NOT NULL REFERENCES registry_blobs(digest),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (repo_id, digest)
);
CREATE INDEX registry_repo_blobs_digest ON registry_repo_blobs (digest);
CREATE TABLE registry_manifests (
	id {{autoid}},
	repo_id BIGINT NOT NULL REFERENCES registry_repos(id) ON DELETE CASCADE,
	digest TEXT NOT NULL,
	media_type TEXT NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	size BIGINT NOT NULL,
	content {{blob}} NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	annotations TEXT NOT NULL DEFAULT '',
	is_image BOOLEAN NOT NULL DEFAULT FALSE,
	scan_status TEXT NOT NULL DEFAULT '',
	scan_reason TEXT NOT NULL DEFAULT '',
	scan_summary TEXT NOT NULL DEFAULT '',
	scanned_at BIGINT,
	advisories TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	UNIQUE (repo_id, digest)
);
CREATE INDEX registry_manifests_subject ON registry_manifests (repo_id, subject);
-- The blobs (config, layers) a manifest needs; the foreign key to the link
-- keeps a referenced blob from being unlinked or collected.
CREATE TABLE registry_manifest_blobs (
	manifest_id BIGINT NOT NULL REFERENCES registry_manifests(id) ON DELETE CASCADE,
	repo_id BIGINT NOT NULL,
	digest TEXT NOT NULL,
	PRIMARY KEY (manifest_id, digest),
	FOREIGN KEY (repo_id, digest) REFERENCES registry_repo_blobs(repo_id, digest)
);
CREATE INDEX registry_manifest_blobs_link ON registry_manifest_blobs (repo_id, digest);
-- The manifests an index lists.
CREATE TABLE registry_manifest_children (
	manifest_id BIGINT NOT NULL REFERENCES registry_manifests(id) ON DELETE CASCADE,
	child TEXT NOT NULL,
	PRIMARY KEY (manifest_id, child)
);
CREATE TABLE registry_tags (
	repo_id BIGINT NOT NULL REFERENCES registry_repos(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	manifest_id BIGINT NOT NULL REFERENCES registry_manifests(id) ON DELETE CASCADE,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (repo_id, name)
);
CREATE INDEX registry_tags_manifest ON registry_tags (manifest_id);
-- Uploads in progress: the bytes are in the driver under uploads/ID, the
-- hash state of the bytes received so far is here.
CREATE TABLE registry_uploads (
	id TEXT PRIMARY KEY,
	repo_id BIGINT NOT NULL REFERENCES registry_repos(id) ON DELETE CASCADE,
	size BIGINT NOT NULL DEFAULT 0,
	hash_state {{blob}},
	started_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
-- Images waiting for the scanner; a row survives restarts until scanned.
CREATE TABLE registry_scan_queue (
	manifest_id BIGINT PRIMARY KEY REFERENCES registry_manifests(id) ON DELETE CASCADE,
	reason TEXT NOT NULL,
	enqueued_at BIGINT NOT NULL,
	attempts BIGINT NOT NULL DEFAULT 0,
	lease_until BIGINT NOT NULL DEFAULT 0
);
-- Storage quotas per project (project_id 0: the org's own repositories).
CREATE TABLE registry_quotas (
	org_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL,
	max_bytes BIGINT NOT NULL,
	PRIMARY KEY (org_id, project_id)
);
-- Keys: the token signing key and the image signing key, sealed.
CREATE TABLE registry_keys (
	name TEXT PRIMARY KEY,
	sealed {{blob}} NOT NULL,
	public TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
