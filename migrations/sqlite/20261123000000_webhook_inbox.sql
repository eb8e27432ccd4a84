-- Webhook deliveries, stored before they are acknowledged and handled
-- afterwards by the inbox worker, so a crash after the acknowledgement
-- loses nothing. The unique key makes a redelivery (same delivery id) a
-- no-op. A row is due when it is not processed, no worker holds a lease
-- on it, and it has not failed too often.
CREATE TABLE webhook_inbox (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until BIGINT,
    processed_at BIGINT,
    last_error TEXT,
    UNIQUE (source, delivery_id)
);

CREATE INDEX webhook_inbox_due ON webhook_inbox (processed_at, id);
