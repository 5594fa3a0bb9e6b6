-- What finds a reading by its id, from now on: a row per reading in reading_ids made
-- each append insert one row per reading, which cost it about 40% of its time.
--
-- recent_ids: the ids of readings whose epoch (2**14 log indices, as in reading_ids) is
-- not complete yet, one row per append (per run of readings at consecutive log indices
-- in it), holding the first 8 bytes of each reading's id in log order.
--
-- id_chunks: when an append completes an epoch, its ids move from recent_ids to 256 rows,
-- one per value of the ids' first byte (bucket), in the same transaction (see
-- codec.ids_to_seal and codec.seal_recent_ids). A lookup reads the rows of its id's
-- bucket, one per epoch; the audit reads an epoch's rows.
--
-- Ids already in reading_ids stay there, and a lookup searches all three tables.

CREATE TABLE recent_ids (
    first_idx BIGINT PRIMARY KEY,
    id_keys BYTEA NOT NULL
);

CREATE TABLE id_chunks (
    bucket SMALLINT NOT NULL,
    epoch BIGINT NOT NULL,
    id_keys BYTEA NOT NULL,
    offsets BYTEA NOT NULL,
    PRIMARY KEY (bucket, epoch)
);
CREATE INDEX id_chunks_epoch ON id_chunks (epoch);
