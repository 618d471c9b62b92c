CREATE TABLE policy_decisions (
	seq {{autoid}},
	id TEXT NOT NULL UNIQUE,
	org_id BIGINT REFERENCES orgs(id) ON DELETE CASCADE,
	gate TEXT NOT NULL,
	subject TEXT NOT NULL,
	environment TEXT NOT NULL DEFAULT '',
	repository TEXT NOT NULL DEFAULT '',
	allow BOOLEAN NOT NULL,
	outcome TEXT NOT NULL,
	revision TEXT NOT NULL,
	input_digest TEXT NOT NULL,
	result TEXT NOT NULL,
	caller TEXT NOT NULL,
	at BIGINT NOT NULL,
	duration_us BIGINT NOT NULL
);
CREATE INDEX policy_decisions_org ON policy_decisions (org_id, seq);
CREATE INDEX policy_decisions_subject ON policy_decisions (org_id, subject, seq);
CREATE INDEX policy_decisions_at ON policy_decisions (at);
CREATE TABLE policy_exceptions (
	id {{autoid}},
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	rule TEXT NOT NULL DEFAULT '',
	fingerprint TEXT NOT NULL DEFAULT '',
	paths TEXT NOT NULL DEFAULT '',
	repository TEXT NOT NULL DEFAULT '',
	image TEXT NOT NULL DEFAULT '',
	environment TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL,
	owner TEXT NOT NULL,
	expires TEXT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX policy_exceptions_org ON policy_exceptions (org_id, id);
