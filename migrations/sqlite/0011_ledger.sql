-- The ledger (ravproto::ledger): balances in integer units per account and pocket, and the
-- append-only, double-entry movements that change them. A balance row is only ever changed in
-- the transaction that inserts the movement; `ravsock ledger check` recomputes every balance
-- from the movements. The CHECKs refuse a balance below zero (an overdraft) or above 2^62 - 1,
-- so that adding two amounts never overflows (SQLite would turn the sum into a float).
CREATE TABLE ledger_balances (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    pocket TEXT NOT NULL CHECK (pocket IN ('available', 'staked', 'escrowed', 'slashed')),
    amount INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 4611686018427387903),
    PRIMARY KEY (account_id, pocket)
);

-- One row per movement; `from_account` NULL with `from_pocket` 'mint' is an issue of new
-- units (an admin's credit). `idempotency_key` is unique: a replayed movement is not made twice.
-- `nonce` is random per attempt: the balance updates of a movement apply only where the entry
-- with its key carries its own nonce, so two concurrent attempts with one key (PostgreSQL's
-- READ COMMITTED lets both reach their updates) move the units once.
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    nonce INTEGER NOT NULL,
    from_account INTEGER REFERENCES accounts(id),
    from_pocket TEXT NOT NULL CHECK (from_pocket IN ('available', 'staked', 'escrowed', 'slashed', 'mint')),
    to_account INTEGER NOT NULL REFERENCES accounts(id),
    to_pocket TEXT NOT NULL CHECK (to_pocket IN ('available', 'staked', 'escrowed', 'slashed')),
    amount INTEGER NOT NULL CHECK (amount > 0 AND amount <= 4611686018427387903),
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK ((from_account IS NULL) = (from_pocket = 'mint'))
);
CREATE INDEX ledger_entries_from ON ledger_entries (from_account, id);
CREATE INDEX ledger_entries_to ON ledger_entries (to_account, id);
-- A graph's escrow, payments and refund share its reference (`graph#N`): summed per graph.
CREATE INDEX ledger_entries_reference ON ledger_entries (reference);
