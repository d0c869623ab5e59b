-- Topics (Allora's rounds): a requester's recurring question, answered in numbered rounds.
-- `spec` is the JSON of a `ravproto::topics::TopicSpec`; `open` is 1 while it opens rounds.
CREATE TABLE topics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    spec TEXT NOT NULL,
    open INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per round, written when it opens (before workers hear of it); times are Unix
-- milliseconds. `closed` is 1 once its `value` (NULL when nobody answered) is final; `scores`
-- is the JSON of its scored answers once `truth` is posted.
CREATE TABLE topic_rounds (
    topic_id INTEGER NOT NULL REFERENCES topics(id),
    number INTEGER NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closes_at_ms INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    value REAL,
    truth REAL,
    scores TEXT,
    PRIMARY KEY (topic_id, number)
);

-- One answer per worker account and round: the key refuses a second one.
CREATE TABLE topic_answers (
    topic_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    worker INTEGER NOT NULL REFERENCES accounts(id),
    value REAL NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (topic_id, number, worker),
    FOREIGN KEY (topic_id, number) REFERENCES topic_rounds(topic_id, number)
);
