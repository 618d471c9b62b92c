CREATE TABLE vault_secrets (
	id {{autoid}},
	uid TEXT NOT NULL UNIQUE,
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE,
	env TEXT NOT NULL,
	name TEXT NOT NULL,
	scope_key TEXT NOT NULL UNIQUE,
	owner TEXT NOT NULL,
	description TEXT NOT NULL,
	generator TEXT NOT NULL,
	current_version INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	rotated_at BIGINT,
	expires_at BIGINT,
	leaked_at BIGINT
);
CREATE INDEX vault_secrets_org ON vault_secrets (org_id, project_id, env, name);
CREATE TABLE vault_versions (
	secret_id BIGINT NOT NULL REFERENCES vault_secrets(id) ON DELETE CASCADE,
	version INTEGER NOT NULL,
	format TEXT NOT NULL,
	ciphertext {{blob}},
	wrapped_dek {{blob}},
	kek_version INTEGER NOT NULL,
	fingerprint TEXT,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	reason TEXT NOT NULL,
	deleted_at BIGINT,
	destroyed BOOLEAN NOT NULL DEFAULT FALSE,
	leaked_at BIGINT,
	PRIMARY KEY (secret_id, version)
);
CREATE INDEX vault_versions_fingerprint ON vault_versions (fingerprint);
CREATE INDEX vault_versions_kek ON vault_versions (kek_version);
CREATE TABLE vault_keys (
	name TEXT PRIMARY KEY,
	wrapped {{blob}} NOT NULL,
	kek_version INTEGER NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE vault_signing_keys (
	id {{autoid}},
	uid TEXT NOT NULL UNIQUE,
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	scope_key TEXT NOT NULL UNIQUE,
	algorithm TEXT NOT NULL,
	public_key {{blob}} NOT NULL,
	ciphertext {{blob}} NOT NULL,
	wrapped_dek {{blob}} NOT NULL,
	kek_version INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL
);
CREATE INDEX vault_signing_keys_kek ON vault_signing_keys (kek_version);
CREATE TABLE vault_policies (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	description TEXT NOT NULL,
	secrets TEXT NOT NULL,
	subjects TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	UNIQUE (org_id, name)
);
CREATE TABLE vault_policy_generation (
	org_id BIGINT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
	generation BIGINT NOT NULL
);
CREATE TABLE vault_project_settings (
	project_id BIGINT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
	rotate_on_leak BOOLEAN NOT NULL,
	restart_on_rotate BOOLEAN NOT NULL
);
CREATE TABLE vault_leaks (
	id {{autoid}},
	secret_id BIGINT NOT NULL REFERENCES vault_secrets(id) ON DELETE CASCADE,
	version INTEGER NOT NULL,
	found_at BIGINT NOT NULL,
	source TEXT NOT NULL,
	location TEXT NOT NULL,
	current BOOLEAN NOT NULL,
	rotated_version INTEGER,
	resolved_at BIGINT
);
CREATE INDEX vault_leaks_secret ON vault_leaks (secret_id, id);
CREATE TABLE vault_events (
	id {{autoid}},
	kind TEXT NOT NULL,
	secret_id BIGINT NOT NULL,
	ref TEXT NOT NULL,
	version INTEGER NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE vault_kek_state (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	kind TEXT NOT NULL,
	target_version INTEGER NOT NULL,
	started_at BIGINT,
	finished_at BIGINT
);
