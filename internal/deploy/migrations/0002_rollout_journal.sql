-- The rollout journal: one row per durable step of a deployment's
-- rollout (instances started, traffic switched, a check passed, the
-- commit point, old instances stopped, a rollback begun, a recovery at
-- start). A Rampart restarted after a crash reads it to know how far
-- an interrupted rollout got.
CREATE TABLE deploy_rollout_journal (
	id {{autoid}},
	deployment_id BIGINT NOT NULL,
	kind TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	at BIGINT NOT NULL
);
CREATE INDEX deploy_rollout_journal_deployment ON deploy_rollout_journal (deployment_id, id);
