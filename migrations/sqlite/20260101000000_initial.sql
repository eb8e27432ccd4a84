-- hoist's first schema.
--
-- Conventions, kept so a PostgreSQL twin of these files stays a copy:
-- * times are BIGINT unix milliseconds (UTC);
-- * JSON is TEXT;
-- * repositories are stored as `owner/name` in lower case, because GitHub
--   compares repository names without regard to case;
-- * upserts and dedupes use ON CONFLICT, which both databases accept.

-- Which conversation asked for which deployment, on any forge.
CREATE TABLE deployments (
    forge TEXT NOT NULL,
    repo TEXT NOT NULL,
    deployment_id BIGINT NOT NULL,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    task TEXT NOT NULL,
    origin TEXT NOT NULL,
    request_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (forge, repo, deployment_id)
);

-- Every status seen for a deployment; the unique key makes a redelivered
-- status event a no-op.
CREATE TABLE deployment_statuses (
    id INTEGER PRIMARY KEY,
    forge TEXT NOT NULL,
    repo TEXT NOT NULL,
    deployment_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    description TEXT,
    log_url TEXT,
    environment_url TEXT,
    at BIGINT NOT NULL,
    UNIQUE (forge, repo, deployment_id, state, at)
);

-- A run's output, in the order it arrived (by id).
CREATE TABLE deployment_logs (
    id INTEGER PRIMARY KEY,
    forge TEXT NOT NULL,
    repo TEXT NOT NULL,
    deployment_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL
);

CREATE INDEX deployment_logs_by_deployment
    ON deployment_logs (forge, repo, deployment_id, id);

-- Every command and what hoist decided.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    platform TEXT NOT NULL,
    actor TEXT NOT NULL,
    command TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);

-- Replies waiting for delivery. A row is due when it is not delivered,
-- next_attempt_at has passed and no worker holds a lease on it.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    body TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    delivered_at BIGINT,
    last_error TEXT
);

CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);

-- The local forge's deployments. AUTOINCREMENT so an id is never reused,
-- even after the newest row is deleted: ids are shown to people.
CREATE TABLE local_deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    request_key TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    task TEXT NOT NULL,
    environment TEXT NOT NULL,
    description TEXT,
    creator TEXT NOT NULL,
    payload TEXT NOT NULL,
    transient_environment BOOLEAN NOT NULL,
    production_environment BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (repo, request_key)
);

CREATE TABLE local_statuses (
    id INTEGER PRIMARY KEY,
    deployment_id BIGINT NOT NULL REFERENCES local_deployments (id),
    state TEXT NOT NULL,
    description TEXT,
    log_url TEXT,
    environment_url TEXT,
    at BIGINT NOT NULL
);

CREATE INDEX local_statuses_by_deployment ON local_statuses (deployment_id, id);

-- The local stand-in for CI: one status context per commit and name.
CREATE TABLE local_commit_checks (
    repo TEXT NOT NULL,
    sha TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, sha, name)
);
