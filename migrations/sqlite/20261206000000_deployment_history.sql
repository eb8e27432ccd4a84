-- The dashboard's history and overview. Each deployment keeps the rules'
-- decision that let it be made (`policy: allowed (...)`), and who asked
-- (the origin's actor name, also kept inside `origin`), so the history
-- can be filtered by person in SQL; rows from before are given theirs.
ALTER TABLE deployments ADD COLUMN decision TEXT;
ALTER TABLE deployments ADD COLUMN actor TEXT NOT NULL DEFAULT '';
UPDATE deployments SET actor = COALESCE(json_extract(origin, '$.actor.name'), '');
CREATE INDEX deployments_by_target ON deployments (app, environment, created_at);
CREATE INDEX deployments_by_time ON deployments (created_at);
