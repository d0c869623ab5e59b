-- The training state of each graph that trains, after its latest training step: written in the
-- same transaction as that step's results, so a restarted server resumes from a state that
-- matches the results it has.
CREATE TABLE checkpoints (
    graph_id INTEGER PRIMARY KEY REFERENCES graphs(id),
    version INTEGER NOT NULL,
    data BLOB NOT NULL
);
