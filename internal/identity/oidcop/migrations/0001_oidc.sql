CREATE TABLE oidc_clients (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	secret_hash TEXT NOT NULL DEFAULT '',
	public BOOLEAN NOT NULL,
	redirect_uris TEXT NOT NULL DEFAULT '',
	grant_types TEXT NOT NULL,
	scopes TEXT NOT NULL DEFAULT '',
	builtin BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE oidc_auth_requests (
	id TEXT PRIMARY KEY,
	client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
	request TEXT NOT NULL,
	user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
	amr TEXT NOT NULL DEFAULT '',
	auth_time BIGINT,
	done BOOLEAN NOT NULL DEFAULT FALSE,
	code_hash TEXT UNIQUE,
	code_expires_at BIGINT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_auth_requests_expires ON oidc_auth_requests (expires_at);
CREATE TABLE oidc_refresh_tokens (
	hash TEXT PRIMARY KEY,
	family TEXT NOT NULL,
	client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	scopes TEXT NOT NULL,
	audience TEXT NOT NULL,
	amr TEXT NOT NULL DEFAULT '',
	auth_time BIGINT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT,
	revoked_at BIGINT
);
CREATE INDEX oidc_refresh_tokens_family ON oidc_refresh_tokens (family);
CREATE INDEX oidc_refresh_tokens_user ON oidc_refresh_tokens (user_id, client_id);
CREATE TABLE oidc_access_tokens (
	id_hash TEXT PRIMARY KEY,
	client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
	user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
	subject TEXT NOT NULL,
	scopes TEXT NOT NULL,
	audience TEXT NOT NULL,
	amr TEXT NOT NULL DEFAULT '',
	auth_time BIGINT,
	refresh_family TEXT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT
);
CREATE INDEX oidc_access_tokens_family ON oidc_access_tokens (refresh_family);
CREATE INDEX oidc_access_tokens_user ON oidc_access_tokens (user_id, client_id);
CREATE TABLE oidc_device_authorizations (
	device_code_hash TEXT PRIMARY KEY,
	user_code TEXT NOT NULL UNIQUE,
	client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
	scopes TEXT NOT NULL,
	state TEXT NOT NULL,
	user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
	amr TEXT NOT NULL DEFAULT '',
	auth_time BIGINT,
	last_poll_at BIGINT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE TABLE oidc_signing_keys (
	id TEXT PRIMARY KEY,
	algorithm TEXT NOT NULL,
	public_key {{blob}} NOT NULL,
	private_key {{blob}} NOT NULL,
	created_at BIGINT NOT NULL,
	retire_after BIGINT
);
