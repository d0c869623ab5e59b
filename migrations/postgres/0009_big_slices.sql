-- Big slices and results travel through ravftp and are kept in the blob store, under
-- `blobs/jobs/<job>/`: a slice's bytes as `in-<idx>.bin` (and `input` empty), its result as
-- `out-<idx>.bin` (and `result` empty). `input_len` and `result_len` are their lengths there,
-- NULL where the bytes are in the row.
ALTER TABLE job_slices ADD COLUMN input_len BIGINT;
ALTER TABLE job_slices ADD COLUMN result_len BIGINT;
