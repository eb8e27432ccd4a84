-- The workers look only at what is still to do, while delivered replies and
-- handled deliveries pile up behind it. Partial indexes over the pending
-- rows keep each claim as cheap on a year-old database as on a new one:
-- the old per-conversation index made a claim scan every reply ever sent
-- to a conversation.
DROP INDEX outbox_due;
DROP INDEX outbox_by_conversation;
CREATE INDEX outbox_pending ON outbox (id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_pending_by_conversation ON outbox (platform, conversation, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (id) WHERE dead_at IS NOT NULL;

-- One index per inbox lane (`InboxLane`; the conditions must read as the
-- claim's do), so a lane's claim never walks the other lane's backlog.
DROP INDEX webhook_inbox_due;
CREATE INDEX webhook_inbox_pending_statuses ON webhook_inbox (id)
    WHERE processed_at IS NULL AND (source = 'github' AND event = 'deployment_status');
CREATE INDEX webhook_inbox_pending_requests ON webhook_inbox (id)
    WHERE processed_at IS NULL AND NOT (source = 'github' AND event = 'deployment_status');
