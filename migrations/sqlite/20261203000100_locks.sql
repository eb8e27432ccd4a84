-- Environment locks (`lock production`): one row per scope (`app/env`, or
-- `*` for the global lock), so two people claiming the same environment
-- at once cannot both get it: the second insert finds the first. `lock`
-- is the whole lock as JSON (holder, reason, where it was taken); `until`
-- is when it ends by itself (NULL: until unlocked).
CREATE TABLE locks (
    scope_key TEXT PRIMARY KEY,
    lock TEXT NOT NULL,
    since BIGINT NOT NULL,
    until BIGINT,
    -- When its holder was last reminded of it (a long-held lock).
    reminded_at BIGINT
);
