-- The chat message that shows a deployment (its "card"), per platform, so
-- later statuses update it in place (Slack's chat.update) and reply in
-- its thread.
CREATE TABLE chat_messages (
    card_key TEXT NOT NULL,
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (card_key, platform)
);
