-- Federated queries: the requester's evaluation keys (public ones: they add, never decrypt)
-- and, once the query is closed, the aggregate handed to the requester.
CREATE TABLE federated_queries (
    graph_id INTEGER PRIMARY KEY REFERENCES graphs(id),
    public_key BLOB,
    evaluation_keys BLOB,
    aggregate TEXT
);

-- What each provider sent (ciphertexts in encrypted mode); the key refuses a second report.
CREATE TABLE federated_submissions (
    graph_id INTEGER NOT NULL REFERENCES graphs(id),
    provider INTEGER NOT NULL REFERENCES accounts(id),
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (graph_id, provider)
);
