CREATE TABLE audit_log (
	seq BIGINT PRIMARY KEY,
	at BIGINT NOT NULL,
	actor_id BIGINT,
	actor_name TEXT NOT NULL,
	action TEXT NOT NULL,
	outcome TEXT NOT NULL,
	target_type TEXT NOT NULL,
	target_id TEXT NOT NULL,
	target_name TEXT NOT NULL,
	org_id BIGINT,
	source_ip TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	request_id TEXT NOT NULL,
	details TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE TABLE audit_head (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL,
	hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
