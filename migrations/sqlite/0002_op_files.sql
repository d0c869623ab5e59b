-- Values too big to travel inline live as files in <data-dir>/blobs/<op_id>.ravv; this table
-- records which ops have one and its length (the file is written before the row commits).
CREATE TABLE op_files (
    op_id INTEGER PRIMARY KEY REFERENCES ops(id),
    len INTEGER NOT NULL
);
