CREATE TABLE repos (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	project_id BIGINT REFERENCES projects(id) ON DELETE SET NULL,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	default_branch TEXT NOT NULL,
	public BOOLEAN NOT NULL DEFAULT FALSE,
	next_pr BIGINT NOT NULL DEFAULT 1,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	UNIQUE (org_id, name)
);
CREATE TABLE branch_protections (
	id {{autoid}},
	repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	pattern TEXT NOT NULL,
	require_pr BOOLEAN NOT NULL DEFAULT FALSE,
	required_checks TEXT NOT NULL DEFAULT '',
	required_approvals BIGINT NOT NULL DEFAULT 0,
	dismiss_stale BOOLEAN NOT NULL DEFAULT TRUE,
	allow_force_push BOOLEAN NOT NULL DEFAULT FALSE,
	allow_deletion BOOLEAN NOT NULL DEFAULT FALSE,
	require_signed BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	UNIQUE (repo_id, pattern)
);
CREATE TABLE pull_requests (
	id {{autoid}},
	repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	number BIGINT NOT NULL,
	title TEXT NOT NULL,
	body TEXT NOT NULL DEFAULT '',
	author_id BIGINT,
	author_name TEXT NOT NULL,
	base_ref TEXT NOT NULL,
	head_ref TEXT NOT NULL,
	base_sha TEXT NOT NULL,
	head_sha TEXT NOT NULL,
	state TEXT NOT NULL,
	merge_commit TEXT NOT NULL DEFAULT '',
	merged_by TEXT NOT NULL DEFAULT '',
	merged_at BIGINT,
	closed_at BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (repo_id, number)
);
CREATE INDEX pull_requests_head ON pull_requests (repo_id, head_ref, state);
CREATE TABLE pr_reviews (
	id {{autoid}},
	pr_id BIGINT NOT NULL REFERENCES pull_requests(id) ON DELETE CASCADE,
	author_id BIGINT,
	author_name TEXT NOT NULL,
	state TEXT NOT NULL,
	body TEXT NOT NULL DEFAULT '',
	commit_sha TEXT NOT NULL,
	dismissed BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL
);
CREATE INDEX pr_reviews_pr ON pr_reviews (pr_id);
CREATE TABLE pr_comments (
	id {{autoid}},
	pr_id BIGINT NOT NULL REFERENCES pull_requests(id) ON DELETE CASCADE,
	author_id BIGINT,
	author_name TEXT NOT NULL,
	body TEXT NOT NULL,
	path TEXT NOT NULL DEFAULT '',
	line BIGINT NOT NULL DEFAULT 0,
	side TEXT NOT NULL DEFAULT '',
	commit_sha TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX pr_comments_pr ON pr_comments (pr_id);
CREATE TABLE status_checks (
	id {{autoid}},
	repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	sha TEXT NOT NULL,
	context TEXT NOT NULL,
	state TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	target_url TEXT NOT NULL DEFAULT '',
	creator TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (repo_id, sha, context)
);
CREATE TABLE webhooks (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	repo_id BIGINT REFERENCES repos(id) ON DELETE CASCADE,
	url TEXT NOT NULL,
	secret {{blob}},
	events TEXT NOT NULL,
	active BOOLEAN NOT NULL DEFAULT TRUE,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id);
CREATE TABLE webhook_deliveries (
	id {{autoid}},
	webhook_id BIGINT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
	guid TEXT NOT NULL,
	event TEXT NOT NULL,
	payload TEXT NOT NULL,
	state TEXT NOT NULL,
	attempts BIGINT NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	status_code BIGINT NOT NULL DEFAULT 0,
	response TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	duration_ms BIGINT NOT NULL DEFAULT 0,
	event_seq BIGINT,
	redelivery_of BIGINT,
	created_at BIGINT NOT NULL,
	delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_id, event_seq);
CREATE TABLE ssh_keys (
	id {{autoid}},
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	fingerprint TEXT NOT NULL UNIQUE,
	public_key TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT
);
CREATE INDEX ssh_keys_user ON ssh_keys (user_id);
