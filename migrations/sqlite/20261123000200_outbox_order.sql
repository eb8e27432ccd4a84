-- Replies are delivered in order per conversation, and given up on (dead
-- letters) after a bounded time; `hoist outbox` lists and retries those.
ALTER TABLE outbox ADD COLUMN conversation TEXT;
ALTER TABLE outbox ADD COLUMN dead_at BIGINT;

CREATE INDEX outbox_by_conversation ON outbox (conversation, id);
