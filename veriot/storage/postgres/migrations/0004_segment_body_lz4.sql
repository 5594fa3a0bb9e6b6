-- Segment bodies (about 16 KB for 100 readings) are compressed by TOAST when stored. lz4
-- compresses and decompresses them several times faster than the default pglz, on CPU
-- that the database usually shares with the service (bench/store.py, 2 cores, runs of
-- 100 readings: appends 0.25-0.32x the bare COPY baseline against 0.20-0.25x with pglz),
-- for bodies about 6% larger. Bodies stored before stay pglz and read as before. A server
-- without lz4 (built without it, or older than PostgreSQL 14) keeps pglz.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE segments ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION
    WHEN feature_not_supported OR syntax_error THEN
        RAISE NOTICE 'segment bodies stay pglz: %', SQLERRM;
END
$$;
