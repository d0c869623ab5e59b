-- Result retention: `ended_at` is when a graph last reached an end (computed, failed,
-- cancelled), NULL while it has not; `expired_at` is when ravsock removed its values, op
-- files and checkpoint after the retention (`--result-retention-secs`), NULL while they are kept.
--
-- The end is stamped by triggers rather than by each statement that sets a status (four
-- places in the code, one inside the results transaction), so no path can forget it.
ALTER TABLE graphs ADD COLUMN ended_at INTEGER;
ALTER TABLE graphs ADD COLUMN expired_at INTEGER;

-- Graphs that ended before this migration: their retention counts from the upgrade.
UPDATE graphs SET ended_at = CAST(strftime('%s', 'now') AS INTEGER)
WHERE status IN ('computed', 'failed', 'cancelled');

-- The sweep reads the oldest end among graphs whose values are still kept.
CREATE INDEX graphs_kept_by_end ON graphs(ended_at) WHERE expired_at IS NULL;

CREATE TRIGGER graphs_end_on_insert AFTER INSERT ON graphs
WHEN NEW.status IN ('computed', 'failed', 'cancelled')
BEGIN
    UPDATE graphs SET ended_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = NEW.id;
END;

-- `UPDATE OF status` only: the trigger's own update (of `ended_at`) does not fire it again.
CREATE TRIGGER graphs_end_on_status AFTER UPDATE OF status ON graphs
WHEN NEW.status IS NOT OLD.status
BEGIN
    UPDATE graphs SET ended_at = CASE WHEN NEW.status IN ('computed', 'failed', 'cancelled')
        THEN CAST(strftime('%s', 'now') AS INTEGER) END
    WHERE id = NEW.id;
END;
