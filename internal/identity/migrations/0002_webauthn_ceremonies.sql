CREATE TABLE webauthn_ceremonies (
	key_hash TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
	data TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies (expires_at);
