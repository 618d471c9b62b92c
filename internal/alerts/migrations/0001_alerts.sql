CREATE TABLE alert_repos (
	repo_id BIGINT PRIMARY KEY,
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	default_branch TEXT NOT NULL DEFAULT '',
	last_commit TEXT NOT NULL DEFAULT '',
	last_scan_at BIGINT,
	last_started_at BIGINT,
	last_error TEXT NOT NULL DEFAULT '',
	last_notes BIGINT NOT NULL DEFAULT 0,
	scans BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX alert_repos_org ON alert_repos (org_id, name);
CREATE TABLE alerts (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	repo_id BIGINT NOT NULL,
	repo TEXT NOT NULL,
	source TEXT NOT NULL DEFAULT 'scan',
	fingerprint TEXT NOT NULL,
	kind TEXT NOT NULL,
	rule_id TEXT NOT NULL,
	title TEXT NOT NULL,
	severity INTEGER NOT NULL,
	path TEXT NOT NULL DEFAULT '',
	line INTEGER NOT NULL DEFAULT 0,
	finding TEXT NOT NULL,
	state TEXT NOT NULL,
	first_seen_at BIGINT NOT NULL,
	first_commit TEXT NOT NULL DEFAULT '',
	last_seen_at BIGINT NOT NULL,
	last_commit TEXT NOT NULL DEFAULT '',
	opened_at BIGINT NOT NULL,
	reopened INTEGER NOT NULL DEFAULT 0,
	dismissed_reason TEXT NOT NULL DEFAULT '',
	dismissed_comment TEXT NOT NULL DEFAULT '',
	dismissed_by TEXT NOT NULL DEFAULT '',
	dismissed_at BIGINT,
	fixed_at BIGINT,
	fixed_commit TEXT NOT NULL DEFAULT '',
	workitem BIGINT,
	UNIQUE (repo_id, source, fingerprint)
);
CREATE INDEX alerts_org_state ON alerts (org_id, state, severity);
CREATE INDEX alerts_repo ON alerts (repo_id, state);
