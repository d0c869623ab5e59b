-- The ravsock schema on PostgreSQL: the end state of migrations/sqlite/0001–0005 in one file
-- (PostgreSQL deployments start here). Integers are BIGINT, as sqlx reads them as i64.

-- Accounts and their API tokens (only a SHA-256 of each token is stored).
CREATE TABLE accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('requester', 'provider', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Graphs; ids are allocated here, never guessed by clients.
CREATE TABLE graphs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner BIGINT NOT NULL REFERENCES accounts(id),
    meta TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'computing', 'computed', 'failed', 'cancelled')),
    failure TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX graphs_owner ON graphs(owner);
CREATE INDEX graphs_status ON graphs(status);

-- Ops, with the client's own numbering kept for id mapping and error reports. Ids are
-- allocated by ravsock in blocks per upload chunk (under an advisory lock), so the column has
-- no default.
CREATE TABLE ops (
    id BIGINT PRIMARY KEY,
    graph_id BIGINT NOT NULL REFERENCES graphs(id),
    local_id BIGINT NOT NULL,
    operation TEXT NOT NULL,
    inputs TEXT NOT NULL,
    persist TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'computing', 'computed', 'failed')),
    UNIQUE (graph_id, local_id),
    UNIQUE (graph_id, persist)
);

-- Op results (and input values), in Raven's binary value encoding.
CREATE TABLE op_values (
    op_id BIGINT PRIMARY KEY REFERENCES ops(id),
    value BYTEA NOT NULL
);

-- Values too big to travel inline live as files in <data-dir>/blobs/<op_id>.ravv; this table
-- records which ops have one and its length (the file is written before the row commits).
CREATE TABLE op_files (
    op_id BIGINT PRIMARY KEY REFERENCES ops(id),
    len BIGINT NOT NULL
);

-- Federated queries: the requester's evaluation keys (public ones: they add, never decrypt)
-- and, once the query is closed, the aggregate handed to the requester.
CREATE TABLE federated_queries (
    graph_id BIGINT PRIMARY KEY REFERENCES graphs(id),
    public_key BYTEA,
    evaluation_keys BYTEA,
    aggregate TEXT
);

-- What each provider sent (ciphertexts in encrypted mode); the key refuses a second report.
CREATE TABLE federated_submissions (
    graph_id BIGINT NOT NULL REFERENCES graphs(id),
    provider BIGINT NOT NULL REFERENCES accounts(id),
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (graph_id, provider)
);

-- The training state of each graph that trains, after its latest training step: written in the
-- same transaction as that step's results, so a restarted server resumes from a state that
-- matches the results it has.
CREATE TABLE checkpoints (
    graph_id BIGINT PRIMARY KEY REFERENCES graphs(id),
    version BIGINT NOT NULL,
    data BYTEA NOT NULL
);
