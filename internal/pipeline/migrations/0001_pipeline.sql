CREATE TABLE pipeline_runs (
	id {{autoid}},
	repo_id BIGINT NOT NULL,
	org_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL DEFAULT 0,
	repo TEXT NOT NULL,
	number BIGINT NOT NULL,
	trigger_key TEXT NOT NULL UNIQUE,
	event TEXT NOT NULL,
	ref TEXT NOT NULL,
	sha TEXT NOT NULL,
	pr_number BIGINT NOT NULL DEFAULT 0,
	actor TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	rerun_of BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	started_at BIGINT,
	finished_at BIGINT,
	UNIQUE (repo_id, number)
);
CREATE INDEX pipeline_runs_status ON pipeline_runs (status);
CREATE TABLE pipeline_jobs (
	id {{autoid}},
	run_id BIGINT NOT NULL REFERENCES pipeline_runs(id) ON DELETE CASCADE,
	idx BIGINT NOT NULL,
	name TEXT NOT NULL,
	spec TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	exit_code BIGINT NOT NULL DEFAULT 0,
	executor TEXT NOT NULL DEFAULT '',
	runner TEXT NOT NULL DEFAULT '',
	log_bytes BIGINT NOT NULL DEFAULT 0,
	started_at BIGINT,
	finished_at BIGINT,
	UNIQUE (run_id, name)
);
CREATE INDEX pipeline_jobs_status ON pipeline_jobs (status);
CREATE TABLE pipeline_steps (
	id {{autoid}},
	job_id BIGINT NOT NULL REFERENCES pipeline_jobs(id) ON DELETE CASCADE,
	idx BIGINT NOT NULL,
	name TEXT NOT NULL,
	type TEXT NOT NULL,
	status TEXT NOT NULL,
	exit_code BIGINT NOT NULL DEFAULT 0,
	started_at BIGINT,
	finished_at BIGINT,
	UNIQUE (job_id, idx)
);
CREATE TABLE pipeline_artifacts (
	id {{autoid}},
	job_id BIGINT NOT NULL REFERENCES pipeline_jobs(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (job_id, name)
);
CREATE TABLE pipeline_schedules (
	id {{autoid}},
	repo_id BIGINT NOT NULL,
	idx BIGINT NOT NULL,
	cron TEXT NOT NULL,
	branch TEXT NOT NULL,
	next_at BIGINT NOT NULL,
	UNIQUE (repo_id, idx)
);
