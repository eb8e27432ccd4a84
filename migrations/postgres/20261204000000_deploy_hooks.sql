-- Deploy hooks (`hoist hooks create`): an HTTP trigger for CI. The token
-- is `dh_<id>_<secret>`; hoist keeps the public `id` and the SHA-256 of
-- the secret (hex), never the token, so a copy of the database deploys
-- nothing. A hook deploys one app to one environment. Deleting a hook
-- deletes its row: a call with its token then finds nothing.
CREATE TABLE deploy_hooks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
