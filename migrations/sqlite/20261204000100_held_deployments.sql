-- Deployments held until integrations report their pre-deploy actions
-- done (deploy.yml's `actions`). `body` is the request as the workflow
-- keeps it (what to deploy, who asked, where to answer, the actions).
-- `state`: provisioning, ready, deployed, failed, timed_out, cancelled;
-- only provisioning and ready move. `cleaned` is set once the
-- integrations were told the environment is gone.
CREATE TABLE held_deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_key TEXT NOT NULL UNIQUE,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'provisioning',
    created_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    cleaned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX held_deployments_by_environment ON held_deployments (app, environment, state);

-- One row per action of a held deployment, in deploy.yml's order
-- (`position`). `sealed` holds the secrets the integration reported,
-- encrypted (never plain text), until the deployment is created.
CREATE TABLE held_actions (
    hold_id INTEGER NOT NULL REFERENCES held_deployments (id),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    deadline BIGINT NOT NULL,
    sealed BLOB,
    reason TEXT,
    PRIMARY KEY (hold_id, name)
);
CREATE INDEX held_actions_pending ON held_actions (deadline) WHERE state = 'pending';

-- A created deployment's secrets for hoist's runner, sealed, bound to
-- the deployment they were made for; deleted when its run is over.
CREATE TABLE run_secrets (
    request_key TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    sha TEXT NOT NULL,
    environment TEXT NOT NULL,
    sealed BLOB NOT NULL
);
