-- Automatic deployments (a push, a pull request) that met required checks
-- still pending: kept until the checks pass (then deployed), fail, or the
-- wait is given up, so an auto-deploy is never dropped for being early.
-- `body` is what to deploy (JSON); the lease keeps two workers from
-- looking at the same one at once.
CREATE TABLE waiting_deploys (
    id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    sha TEXT NOT NULL,
    request_key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX waiting_deploys_by_commit ON waiting_deploys (repo, sha);
