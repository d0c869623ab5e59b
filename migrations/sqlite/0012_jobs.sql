-- Jobs (DCP's unit): one work function mapped over slices. `meta` is the JSON of what the
-- scheduler and workers read (groups' keys, requirements, offer, public info); `work` is the
-- JSON of the `ravproto::jobs::JobWork` (module, args, files, limits) handed to providers.
-- `state` is a `JobState` code: 0 open, 1 closed, 2 complete, 3 cancelled.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    meta TEXT NOT NULL,
    work BLOB NOT NULL,
    state INTEGER NOT NULL,
    total INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per slice. `done_seq` numbers the slices in the order their outcome was stored
-- (from 1), which is what the requester's event long poll pages by; NULL while the slice has
-- none. `failed` is 1 when `result` holds the JSON of a `SliceFailure` instead of the bytes.
CREATE TABLE job_slices (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    idx INTEGER NOT NULL,
    input BLOB NOT NULL,
    done_seq INTEGER,
    failed INTEGER,
    result BLOB,
    events TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE UNIQUE INDEX job_slices_done ON job_slices (job_id, done_seq);

-- Compute groups, created by the first job that names one; the secret is kept only as a
-- salted SHA-256.
CREATE TABLE compute_groups (
    key TEXT PRIMARY KEY,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
