-- The runner's queue: every deployment hoist runs itself, from the moment
-- it is accepted (a `deployment` webhook, a local-forge deployment) until
-- its run ends, so a restart loses none and a run that was going when
-- hoist died is found and ended.
--
-- `lane` is the repository (lower case) and environment: one job of a
-- lane runs at a time, in id order. `state` is `queued`, `running` or
-- `done`; a running job is leased to `worker` until `lease_until` and the
-- worker renews it while the command runs, so a job whose worker died is
-- recognised by its lapsed lease. `cancel_requested_by` is who asked to
-- stop it (the worker watches for it). A job that could not start (the
-- forge did not answer) goes back to `queued`, not before `not_before`.
CREATE TABLE runner_jobs (
    id INTEGER PRIMARY KEY,
    forge TEXT NOT NULL,
    repo TEXT NOT NULL,
    deployment_id BIGINT NOT NULL,
    app TEXT NOT NULL,
    lane TEXT NOT NULL,
    deployment TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    worker TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL DEFAULT 0,
    cancel_requested_by TEXT,
    enqueued_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    UNIQUE (forge, repo, deployment_id)
);
CREATE INDEX runner_jobs_open ON runner_jobs (lane, id) WHERE state <> 'done';
-- Two deployments to one environment never run at once, whatever the
-- workers or replicas: the database refuses a second running job.
CREATE UNIQUE INDEX runner_jobs_one_running ON runner_jobs (lane) WHERE state = 'running';
