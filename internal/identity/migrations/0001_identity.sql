CREATE TABLE orgs (
	id {{autoid}},
	name TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL DEFAULT '',
	require_mfa BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL
);
CREATE TABLE users (
	id {{autoid}},
	username TEXT NOT NULL UNIQUE,
	email TEXT NOT NULL DEFAULT '',
	email_verified BOOLEAN NOT NULL DEFAULT FALSE,
	display_name TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',
	kind TEXT NOT NULL DEFAULT 'human',
	owner_org_id BIGINT REFERENCES orgs(id) ON DELETE CASCADE,
	site_admin BOOLEAN NOT NULL DEFAULT FALSE,
	disabled BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX users_email ON users (email);
CREATE TABLE org_members (
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);
CREATE TABLE teams (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	UNIQUE (org_id, name)
);
CREATE TABLE team_members (
	team_id BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);
CREATE TABLE projects (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	UNIQUE (org_id, name)
);
CREATE TABLE project_user_grants (
	project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (project_id, user_id)
);
CREATE TABLE project_team_grants (
	project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	team_id BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (project_id, team_id)
);
CREATE TABLE login_throttle (
	key TEXT PRIMARY KEY,
	failures BIGINT NOT NULL,
	locked_until BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE sessions (
	id_hash TEXT PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	state TEXT NOT NULL,
	amr TEXT NOT NULL DEFAULT '',
	auth_time BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	csrf TEXT NOT NULL,
	remote_ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	pending TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE tokens (
	id {{autoid}},
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	kind TEXT NOT NULL,
	hint TEXT NOT NULL,
	hash TEXT NOT NULL UNIQUE,
	scopes TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by BIGINT,
	expires_at BIGINT,
	last_used_at BIGINT,
	revoked_at BIGINT
);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE TABLE totp_secrets (
	user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	secret {{blob}} NOT NULL,
	confirmed BOOLEAN NOT NULL DEFAULT FALSE,
	last_step BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL
);
CREATE TABLE webauthn_credentials (
	id {{autoid}},
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	credential_id {{blob}} NOT NULL UNIQUE,
	name TEXT NOT NULL,
	credential TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);
CREATE TABLE recovery_codes (
	id {{autoid}},
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL,
	used_at BIGINT,
	created_at BIGINT NOT NULL
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
