CREATE TABLE federation_providers (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	label TEXT NOT NULL,
	issuer TEXT NOT NULL,
	client_id TEXT NOT NULL,
	client_secret {{blob}},
	scopes TEXT NOT NULL,
	username_claim TEXT NOT NULL,
	match_email BOOLEAN NOT NULL DEFAULT FALSE,
	create_users BOOLEAN NOT NULL DEFAULT FALSE,
	role TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	UNIQUE (org_id, name)
);
CREATE TABLE federation_states (
	state_hash TEXT PRIMARY KEY,
	provider_id BIGINT NOT NULL REFERENCES federation_providers(id) ON DELETE CASCADE,
	binding_hash TEXT NOT NULL,
	nonce TEXT NOT NULL,
	verifier TEXT NOT NULL,
	next TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX federation_states_expires ON federation_states (expires_at);
CREATE TABLE federation_links (
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	provider_id BIGINT REFERENCES federation_providers(id) ON DELETE SET NULL,
	created_at BIGINT NOT NULL,
	last_login_at BIGINT,
	PRIMARY KEY (issuer, subject)
);
CREATE INDEX federation_links_user ON federation_links (user_id);
