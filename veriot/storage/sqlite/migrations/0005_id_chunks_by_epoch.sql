-- id_chunks rows in epoch order. Migration 4 kept them in (bucket, epoch) order, and a
-- table without rowid stores its rows themselves in key order: the 256 rows of an
-- epoch being sealed went to 256 places in the table, and once it held a few epochs
-- each seal rewrote about 256 of its pages. With about a million readings logged,
-- sealing took 8% of the service process's CPU in bench/ingest.py's per-batch drive
-- (2% in epoch order), and ingest slowed as the log grew. In (epoch, bucket) order a
-- seal adds its rows at the end of the table; a lookup reads its bucket's row of each
-- epoch by key (SqliteStore.CHUNKS_OF_BUCKET_SQL).

CREATE TABLE id_chunks_by_epoch (
    epoch INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    id_keys BLOB NOT NULL,
    offsets BLOB NOT NULL,
    PRIMARY KEY (epoch, bucket)
) WITHOUT ROWID;

INSERT INTO id_chunks_by_epoch (epoch, bucket, id_keys, offsets)
SELECT epoch, bucket, id_keys, offsets FROM id_chunks ORDER BY epoch, bucket;

DROP TABLE id_chunks;

ALTER TABLE id_chunks_by_epoch RENAME TO id_chunks;
