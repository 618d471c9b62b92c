CREATE TABLE deploy_environments (
	id {{autoid}},
	org_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL,
	org_name TEXT NOT NULL,
	project_name TEXT NOT NULL,
	name TEXT NOT NULL,
	position INTEGER NOT NULL DEFAULT 0,
	protection TEXT NOT NULL,
	target TEXT NOT NULL,
	current_release_id BIGINT NOT NULL DEFAULT 0,
	previous_release_id BIGINT NOT NULL DEFAULT 0,
	status TEXT NOT NULL DEFAULT 'empty',
	status_message TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	UNIQUE (project_id, name)
);
CREATE TABLE deploy_connections (
	id {{autoid}},
	environment_id BIGINT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	server TEXT NOT NULL DEFAULT '',
	namespace TEXT NOT NULL DEFAULT '',
	ca_cert TEXT NOT NULL DEFAULT '',
	credential {{blob}},
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE deploy_releases (
	id {{autoid}},
	org_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL,
	number BIGINT NOT NULL,
	image TEXT NOT NULL,
	digest TEXT NOT NULL,
	config TEXT NOT NULL,
	secret_refs TEXT NOT NULL,
	source_commit TEXT NOT NULL DEFAULT '',
	source_branch TEXT NOT NULL DEFAULT '',
	repository TEXT NOT NULL DEFAULT '',
	pull_request BIGINT NOT NULL DEFAULT 0,
	work_items TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	UNIQUE (project_id, number)
);
CREATE TABLE deploy_deployments (
	id {{autoid}},
	org_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL,
	environment_id BIGINT NOT NULL,
	release_id BIGINT NOT NULL,
	previous_release_id BIGINT NOT NULL DEFAULT 0,
	strategy TEXT NOT NULL,
	state TEXT NOT NULL,
	decisions TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	step TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	created_by_id BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX deploy_deployments_env ON deploy_deployments (environment_id, id);
CREATE INDEX deploy_deployments_state ON deploy_deployments (state);
CREATE TABLE deploy_approvals (
	id {{autoid}},
	deployment_id BIGINT NOT NULL,
	user_id BIGINT NOT NULL,
	username TEXT NOT NULL,
	approve BOOLEAN NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	at BIGINT NOT NULL,
	UNIQUE (deployment_id, user_id)
);
