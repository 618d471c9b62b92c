CREATE TABLE gateway_routes (
	id {{autoid}},
	org_id BIGINT NOT NULL DEFAULT 0,
	project_id BIGINT NOT NULL DEFAULT 0,
	org_name TEXT NOT NULL DEFAULT '',
	project_name TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	host TEXT NOT NULL,
	path TEXT NOT NULL,
	spec TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	UNIQUE (project_id, name),
	UNIQUE (host, path)
);
CREATE INDEX gateway_routes_host ON gateway_routes (host);
CREATE TABLE gateway_state (
	id INTEGER PRIMARY KEY,
	generation BIGINT NOT NULL
);
INSERT INTO gateway_state (id, generation) VALUES (1, 0);
CREATE TABLE gateway_events (
	id {{autoid}},
	at BIGINT NOT NULL,
	request_id TEXT NOT NULL,
	route_id BIGINT NOT NULL DEFAULT 0,
	route TEXT NOT NULL,
	org_id BIGINT NOT NULL DEFAULT 0,
	project_id BIGINT NOT NULL DEFAULT 0,
	outcome TEXT NOT NULL,
	phase TEXT NOT NULL,
	rule_id INTEGER NOT NULL,
	message TEXT NOT NULL,
	status INTEGER NOT NULL,
	client_ip TEXT NOT NULL,
	method TEXT NOT NULL,
	host TEXT NOT NULL,
	path TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	rules TEXT NOT NULL
);
CREATE INDEX gateway_events_at ON gateway_events (at);
CREATE INDEX gateway_events_request ON gateway_events (request_id);
