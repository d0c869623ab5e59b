-- Tokens that end: `expires_at` is when an account's token stops working (NULL: never),
-- `revoked_at` when an admin revoked it (NULL: it was not), `last_used_at` the last time it
-- authenticated, written in batches (so to within a second or so).
ALTER TABLE accounts ADD COLUMN expires_at INTEGER;
ALTER TABLE accounts ADD COLUMN revoked_at INTEGER;
ALTER TABLE accounts ADD COLUMN last_used_at INTEGER;

-- A running server counts the revoked accounts twice a second to see revocations that another
-- process (`ravsock token revoke`) wrote: this index answers that from revoked rows alone.
CREATE INDEX accounts_revoked ON accounts(revoked_at) WHERE revoked_at IS NOT NULL;
