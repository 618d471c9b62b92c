-- One row per OSV advisory. Times are microseconds since the Unix epoch;
-- withdrawn is 0 for advisories that are not withdrawn.
CREATE TABLE advisory (
	id TEXT PRIMARY KEY,
	modified BIGINT NOT NULL,
	published BIGINT NOT NULL,
	withdrawn BIGINT NOT NULL,
	digest TEXT NOT NULL,
	summary TEXT NOT NULL,
	details TEXT NOT NULL,
	aliases TEXT NOT NULL,
	refs TEXT NOT NULL
);
-- One row per affected package of an advisory, looked up by (ecosystem,
-- name) when matching. ecosystem is the base OSV ecosystem (Debian),
-- release the rest of the OSV ecosystem string (12), name the normalised
-- package name, affected the ranges and versions as JSON.
CREATE TABLE advisory_affected (
	advisory_id TEXT NOT NULL REFERENCES advisory (id) ON DELETE CASCADE,
	ecosystem TEXT NOT NULL,
	release TEXT NOT NULL,
	name TEXT NOT NULL,
	affected TEXT NOT NULL,
	severity INTEGER NOT NULL,
	cvss_vector TEXT NOT NULL,
	cvss_score DOUBLE PRECISION NOT NULL
);
CREATE INDEX advisory_affected_package ON advisory_affected (ecosystem, name);
CREATE INDEX advisory_affected_advisory ON advisory_affected (advisory_id);
-- Where each ecosystem's advisories last came from.
CREATE TABLE advisory_source (
	ecosystem TEXT PRIMARY KEY,
	source TEXT NOT NULL,
	imported_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
