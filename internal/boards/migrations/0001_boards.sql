CREATE TABLE workitem_counters (
	org_id BIGINT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
	last_number BIGINT NOT NULL
);
CREATE TABLE workitems (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	number BIGINT NOT NULL,
	type TEXT NOT NULL,
	title TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	priority INTEGER NOT NULL,
	assignee_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
	project_id BIGINT REFERENCES projects(id) ON DELETE SET NULL,
	parent_number BIGINT,
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	state_changed_at BIGINT NOT NULL,
	resolved_at BIGINT,
	closed_at BIGINT,
	UNIQUE (org_id, number)
);
CREATE INDEX workitems_org_state ON workitems (org_id, state, priority, number);
CREATE INDEX workitems_parent ON workitems (org_id, parent_number);
CREATE TABLE workitem_links (
	id {{autoid}},
	item_id BIGINT NOT NULL REFERENCES workitems(id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	repo_id BIGINT NOT NULL DEFAULT 0,
	repo TEXT NOT NULL DEFAULT '',
	ref TEXT NOT NULL,
	title TEXT NOT NULL DEFAULT '',
	url TEXT NOT NULL DEFAULT '',
	fixes BOOLEAN NOT NULL DEFAULT FALSE,
	resolved BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	UNIQUE (item_id, kind, repo_id, ref)
);
