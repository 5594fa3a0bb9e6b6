-- Readings as segments (see veriot/storage/codec.py): one row per run of readings of one
-- device at consecutive log indices, so an append of 100 readings writes one wide row
-- instead of 100 rows and 300 index entries. The store converts the rows of the legacy
-- `readings` table into one-reading segments when it opens, then drops the table.
-- device_id has no FOREIGN KEY, as in `readings` (see the first migration).

CREATE TABLE segments (
    first_idx BIGINT PRIMARY KEY,
    count INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    min_seq BIGINT NOT NULL,
    max_seq BIGINT NOT NULL,
    min_time DOUBLE PRECISION NOT NULL,
    max_time DOUBLE PRECISION NOT NULL,
    names TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX segments_device_idx ON segments (device_id, first_idx);
CREATE INDEX segments_device_min_seq ON segments (device_id, min_seq);
-- Appends refuse a (device, seq) already stored by probing the segments whose seq range
-- reaches the new seqs: with this index that is one empty range scan when, as usual, the
-- new seqs are above every stored one.
CREATE INDEX segments_device_max_seq ON segments (device_id, max_seq);

-- One row per reading, to find it by id, grouped by epochs of 2**14 log indices so that
-- inserts stay in the newest epoch's pages (see codec.ID_EPOCH_BITS).
CREATE TABLE reading_ids (
    epoch BIGINT NOT NULL,
    id_key BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    PRIMARY KEY (epoch, id_key, idx)
);
