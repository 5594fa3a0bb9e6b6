-- The first schema of the SQLite store. Log indices are INTEGER PRIMARY KEYs (the rowid),
-- so the log order costs no extra index.

CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    did TEXT NOT NULL UNIQUE,
    public_key BLOB NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    registered_at REAL NOT NULL,
    revoked_at REAL,
    metadata TEXT NOT NULL DEFAULT '{}'
);

-- One row per accepted reading: the canonical message and auth blob rebuild it exactly
-- (see veriot/storage/codec.py); the other columns serve queries.
CREATE TABLE readings (
    idx INTEGER PRIMARY KEY,
    id_key INTEGER NOT NULL,
    device_id INTEGER NOT NULL REFERENCES devices (id),
    seq INTEGER NOT NULL,
    message BLOB NOT NULL,
    auth BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    received_at REAL NOT NULL,
    first_time REAL NOT NULL,
    names TEXT NOT NULL,
    gap INTEGER NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX readings_device_idx ON readings (device_id, idx);
-- Reading ids are hashes, so an index on them alone takes each insert to a random page,
-- and a large log would rewrite hundreds of pages per batch. Grouping the keys by epochs
-- of 2**14 log indices keeps inserts inside the newest epoch's few pages; a lookup probes
-- each epoch (see codec.ID_EPOCH_BITS).
CREATE INDEX readings_id_key ON readings ((idx >> 14), id_key);

CREATE TABLE alerts (
    idx INTEGER PRIMARY KEY,
    leaf BLOB NOT NULL
);

-- Tree nodes in tiles (see veriot/storage/tiles.py): tile t of a level holds the 32-byte
-- hashes of nodes t*64 .. t*64+63 of that level, in order; key = (level << 56) | t.
CREATE TABLE node_tiles (
    key INTEGER PRIMARY KEY,
    hashes BLOB NOT NULL
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    time REAL NOT NULL,
    seq INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX events_device ON events (device, id);

CREATE TABLE api_keys (
    key_hash BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    log_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    timestamp REAL NOT NULL,
    signature BLOB NOT NULL
);
CREATE INDEX checkpoints_size ON checkpoints (size, id);
