-- Deployment requests waiting for approvals (deploy.yml's `approvals`).
-- `body` is the request as the workflow keeps it (what to deploy, who
-- asked, where to answer); `conversation` (`platform:id`) finds the one
-- waiting in a conversation for `approve` without a number. `state` is
-- `waiting`, `approved`, `rejected` or `expired`; only `waiting` moves.
CREATE TABLE approval_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_key TEXT NOT NULL UNIQUE,
    conversation TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting',
    required INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX approval_requests_waiting ON approval_requests (state, conversation);

-- One vote per person and request: the key is the voter's GitHub login
-- (lower case), or `id:` and their chat id when hoist knows no login.
CREATE TABLE approval_votes (
    request_id INTEGER NOT NULL REFERENCES approval_requests (id),
    voter TEXT NOT NULL,
    vote TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, voter)
);
