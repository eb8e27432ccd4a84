-- Requests claimed before their deployment is created: a retry of the same
-- request while the first attempt runs is answered without creating, and
-- one that finds an old claim with no deployment recorded (a crash
-- mid-way) asks the forge whether the deployment exists before creating.
CREATE TABLE request_claims (
    request_key TEXT PRIMARY KEY,
    claimed_at BIGINT NOT NULL
);
