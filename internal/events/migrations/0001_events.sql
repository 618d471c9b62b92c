CREATE TABLE events (
	seq {{autoid}},
	type TEXT NOT NULL,
	payload TEXT NOT NULL,
	at BIGINT NOT NULL
);
CREATE INDEX events_type_seq ON events (type, seq);
CREATE TABLE event_cursors (
	subscriber TEXT PRIMARY KEY,
	seq BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE event_leases (
	subscriber TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
