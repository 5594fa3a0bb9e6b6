-- The first schema of the PostgreSQL store; the same tables as the SQLite store.

CREATE TABLE devices (
    id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    did TEXT NOT NULL UNIQUE,
    public_key BYTEA NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    metadata TEXT NOT NULL DEFAULT '{}'
);

-- One row per accepted reading: the canonical message and auth blob rebuild it exactly
-- (see veriot/storage/codec.py); the other columns serve queries.
-- device_id has no FOREIGN KEY here, unlike in SQLite: PostgreSQL checks one with a trigger
-- per row, which costs a quarter of a 1,000-reading append. The store takes every
-- device_id from `devices`, whose rows are never deleted.
CREATE TABLE readings (
    idx BIGINT PRIMARY KEY,
    id_key BIGINT NOT NULL,
    device_id INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    message BYTEA NOT NULL,
    auth BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    first_time DOUBLE PRECISION NOT NULL,
    names TEXT NOT NULL,
    gap BOOLEAN NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX readings_device_idx ON readings (device_id, idx);
-- Reading ids are hashes, so an index on them alone takes each insert to a random page,
-- and a large log would rewrite hundreds of pages per batch. Grouping the keys by epochs
-- of 2**14 log indices keeps inserts inside the newest epoch's few pages; a lookup probes
-- each epoch (see codec.ID_EPOCH_BITS).
CREATE INDEX readings_id_key ON readings ((idx >> 14), id_key);

CREATE TABLE alerts (
    idx BIGINT PRIMARY KEY,
    leaf BYTEA NOT NULL
);

-- Tree nodes in tiles (see veriot/storage/tiles.py): tile t of a level holds the 32-byte
-- hashes of nodes t*64 .. t*64+63 of that level, in order; key = (level << 56) | t.
CREATE TABLE node_tiles (
    key BIGINT PRIMARY KEY,
    hashes BYTEA NOT NULL
);

CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    seq BIGINT,
    detail TEXT NOT NULL
);
CREATE INDEX events_device ON events (device, id);

CREATE TABLE api_keys (
    key_hash BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE checkpoints (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    root BYTEA NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    signature BYTEA NOT NULL
);
CREATE INDEX checkpoints_size ON checkpoints (size, id);
