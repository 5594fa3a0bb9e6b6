-- Readings as segments (see veriot/storage/codec.py): one row per run of readings of one
-- device at consecutive log indices, so an append of 100 readings writes one wide row
-- instead of 100 rows and 300 index entries. The store converts the rows of the legacy
-- `readings` table into one-reading segments when it opens, then drops the table.

CREATE TABLE segments (
    first_idx INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    device_id INTEGER NOT NULL REFERENCES devices (id),
    min_seq INTEGER NOT NULL,
    max_seq INTEGER NOT NULL,
    min_time REAL NOT NULL,
    max_time REAL NOT NULL,
    names TEXT NOT NULL,
    received_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX segments_device_idx ON segments (device_id, first_idx);
CREATE INDEX segments_device_min_seq ON segments (device_id, min_seq);
-- Appends refuse a (device, seq) already stored by probing the segments whose seq range
-- reaches the new seqs: with this index that is one empty range scan when, as usual, the
-- new seqs are above every stored one.
CREATE INDEX segments_device_max_seq ON segments (device_id, max_seq);

-- One row per reading, to find it by id. Ids are hashes, so a plain index on them would
-- take each insert to a random page; grouping them by epochs of 2**14 log indices keeps
-- inserts inside the newest epoch's few pages, and a lookup probes each epoch (see
-- codec.ID_EPOCH_BITS). id_key is the first 8 bytes of the id: hits are confirmed by the
-- reading's message.
CREATE TABLE reading_ids (
    epoch INTEGER NOT NULL,
    id_key INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (epoch, id_key, idx)
) WITHOUT ROWID;
