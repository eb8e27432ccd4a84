-- Each deployment's statuses are relayed in the order they arrived, also
-- when several replicas relay them (PostgreSQL): `order_key` names what a
-- delivery must wait its turn behind (`repo#deployment id`, for GitHub's
-- deployment_status events; NULL for the rest), and a claim passes over a
-- delivery while an earlier one of the same key is leased to a worker.
ALTER TABLE webhook_inbox ADD COLUMN order_key TEXT;
CREATE INDEX webhook_inbox_pending_by_order ON webhook_inbox (order_key, id)
    WHERE processed_at IS NULL AND order_key IS NOT NULL;
