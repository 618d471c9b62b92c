CREATE TABLE realms (
	id {{autoid}},
	org_id BIGINT NOT NULL UNIQUE REFERENCES orgs(id) ON DELETE CASCADE,
	display_name TEXT NOT NULL,
	allow_signup BOOLEAN NOT NULL,
	smtp_host TEXT NOT NULL,
	smtp_port INTEGER NOT NULL,
	smtp_from TEXT NOT NULL,
	smtp_tls TEXT NOT NULL,
	smtp_username TEXT NOT NULL,
	smtp_password {{blob}},
	session_idle BIGINT NOT NULL,
	session_absolute BIGINT NOT NULL,
	key_id TEXT NOT NULL,
	signing_key {{blob}} NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE realm_users (
	id {{autoid}},
	realm_id BIGINT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
	email TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	email_verified BOOLEAN NOT NULL DEFAULT FALSE,
	totp_secret {{blob}},
	totp_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
	totp_last_step BIGINT NOT NULL DEFAULT 0,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until BIGINT,
	created_at BIGINT NOT NULL,
	last_login_at BIGINT,
	UNIQUE (realm_id, email)
);
CREATE TABLE realm_recovery_codes (
	user_id BIGINT NOT NULL REFERENCES realm_users(id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL,
	PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE realm_tokens (
	token_hash TEXT PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES realm_users(id) ON DELETE CASCADE,
	purpose TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX realm_tokens_user ON realm_tokens (user_id);
CREATE TABLE realm_providers (
	id {{autoid}},
	realm_id BIGINT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	issuer TEXT NOT NULL,
	client_id TEXT NOT NULL,
	client_secret {{blob}},
	scopes TEXT NOT NULL,
	require_mfa BOOLEAN NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (realm_id, name)
);
CREATE TABLE realm_oidc_states (
	state_hash TEXT PRIMARY KEY,
	provider_id BIGINT NOT NULL REFERENCES realm_providers(id) ON DELETE CASCADE,
	binding_hash TEXT NOT NULL,
	host TEXT NOT NULL,
	nonce TEXT NOT NULL,
	verifier TEXT NOT NULL,
	next TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX realm_oidc_states_expires ON realm_oidc_states (expires_at);
CREATE TABLE realm_sessions (
	id_hash TEXT PRIMARY KEY,
	realm_id BIGINT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
	user_id BIGINT REFERENCES realm_users(id) ON DELETE CASCADE,
	provider TEXT NOT NULL DEFAULT '',
	subject TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	email_verified BOOLEAN NOT NULL DEFAULT FALSE,
	host TEXT NOT NULL,
	stage TEXT NOT NULL,
	amr TEXT NOT NULL DEFAULT '',
	ceremony TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL
);
CREATE INDEX realm_sessions_user ON realm_sessions (user_id);
CREATE INDEX realm_sessions_realm ON realm_sessions (realm_id);
CREATE TABLE realm_webauthn_keys (
	id {{autoid}},
	user_id BIGINT NOT NULL REFERENCES realm_users(id) ON DELETE CASCADE,
	credential_id {{blob}} NOT NULL UNIQUE,
	credential TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX realm_webauthn_keys_user ON realm_webauthn_keys (user_id);
CREATE TABLE realm_retired_keys (
	realm_id BIGINT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
	key_id TEXT NOT NULL,
	public_key {{blob}} NOT NULL,
	retire_after BIGINT NOT NULL,
	PRIMARY KEY (realm_id, key_id)
);
