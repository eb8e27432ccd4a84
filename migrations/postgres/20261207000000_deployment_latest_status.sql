-- The twin of migrations/sqlite/20261207000000_deployment_latest_status.sql:
-- each deployment keeps its latest status (state and time) beside it, so
-- the dashboard's history and overview read one row per deployment.
-- Triggers keep the copy true in the transaction of the write, whichever
-- of a deployment and its first status is recorded first. Both take a
-- transaction-scoped advisory lock on the deployment first (class "hlst",
-- apart from the lock table's "hlck"): a status and its deployment
-- recorded at once by two replicas would otherwise each miss the other's
-- uncommitted row. After the wait, the trigger's next statement sees what
-- the other committed (plpgsql takes a snapshot per statement).
ALTER TABLE deployments ADD COLUMN latest_state TEXT;
ALTER TABLE deployments ADD COLUMN latest_at BIGINT;

UPDATE deployments d SET
    latest_state = latest.state,
    latest_at = latest.at
FROM (SELECT DISTINCT ON (forge, repo, deployment_id) forge, repo, deployment_id, state, at
      FROM deployment_statuses
      ORDER BY forge, repo, deployment_id, at DESC, id DESC) latest
WHERE latest.forge = d.forge AND latest.repo = d.repo AND latest.deployment_id = d.deployment_id;

CREATE FUNCTION deployment_status_is_latest() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1751937908, hashtext(NEW.forge || ' ' || NEW.repo || ' ' || NEW.deployment_id));
    UPDATE deployments SET latest_state = NEW.state, latest_at = NEW.at
    WHERE forge = NEW.forge AND repo = NEW.repo AND deployment_id = NEW.deployment_id
      AND (latest_at IS NULL OR latest_at <= NEW.at);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER deployment_status_is_latest AFTER INSERT ON deployment_statuses
FOR EACH ROW EXECUTE FUNCTION deployment_status_is_latest();

CREATE FUNCTION deployment_takes_its_latest_status() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1751937908, hashtext(NEW.forge || ' ' || NEW.repo || ' ' || NEW.deployment_id));
    UPDATE deployments d SET latest_state = s.state, latest_at = s.at
    FROM (SELECT state, at FROM deployment_statuses
          WHERE forge = NEW.forge AND repo = NEW.repo AND deployment_id = NEW.deployment_id
          ORDER BY at DESC, id DESC LIMIT 1) s
    WHERE d.forge = NEW.forge AND d.repo = NEW.repo AND d.deployment_id = NEW.deployment_id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER deployment_takes_its_latest_status AFTER INSERT ON deployments
FOR EACH ROW EXECUTE FUNCTION deployment_takes_its_latest_status();

-- The history filtered by state, newest first.
CREATE INDEX deployments_by_latest_state ON deployments (latest_state, created_at);
