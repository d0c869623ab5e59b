-- Accounts and their API tokens (only a SHA-256 of each token is stored).
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('requester', 'provider', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Graphs; ids are allocated here, never guessed by clients.
CREATE TABLE graphs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    meta TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'computing', 'computed', 'failed', 'cancelled')),
    failure TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX graphs_owner ON graphs(owner);

-- Ops, with the client's own numbering kept for id mapping and error reports.
CREATE TABLE ops (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    graph_id INTEGER NOT NULL REFERENCES graphs(id),
    local_id INTEGER NOT NULL,
    operation TEXT NOT NULL,
    inputs TEXT NOT NULL,
    persist TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'computing', 'computed', 'failed')),
    UNIQUE (graph_id, local_id),
    UNIQUE (graph_id, persist)
);
CREATE INDEX ops_graph ON ops(graph_id);

-- Op results (and input values), in Raven's binary value encoding.
CREATE TABLE op_values (
    op_id INTEGER PRIMARY KEY REFERENCES ops(id),
    value BLOB NOT NULL
);
