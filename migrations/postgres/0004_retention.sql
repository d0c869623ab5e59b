-- Result retention: `ended_at` is when a graph last reached an end (computed, failed,
-- cancelled), NULL while it has not; `expired_at` is when ravsock removed its values, op
-- files and checkpoint after the retention (`--result-retention-secs`), NULL while they are kept.
--
-- The end is stamped by a trigger rather than by each statement that sets a status (four
-- places in the code, one inside the results transaction), so no path can forget it.
ALTER TABLE graphs ADD COLUMN ended_at BIGINT;
ALTER TABLE graphs ADD COLUMN expired_at BIGINT;

-- Graphs that ended before this migration: their retention counts from the upgrade.
UPDATE graphs SET ended_at = EXTRACT(EPOCH FROM now())::bigint
WHERE status IN ('computed', 'failed', 'cancelled');

-- The sweep reads the oldest end among graphs whose values are still kept.
CREATE INDEX graphs_kept_by_end ON graphs(ended_at) WHERE expired_at IS NULL;

CREATE FUNCTION graphs_stamp_end() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.ended_at := CASE WHEN NEW.status IN ('computed', 'failed', 'cancelled')
            THEN EXTRACT(EPOCH FROM clock_timestamp())::bigint END;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER graphs_stamp_end BEFORE INSERT OR UPDATE OF status ON graphs
FOR EACH ROW EXECUTE FUNCTION graphs_stamp_end();
