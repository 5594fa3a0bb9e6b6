-- The fields of an alert leaf that alert queries filter on, read from the leaf when it is
-- appended (see veriot/storage/alerts.py). NULL for a leaf that does not parse as an alert;
-- the store fills them for rows written before this migration.

ALTER TABLE alerts ADD COLUMN device TEXT;
ALTER TABLE alerts ADD COLUMN name TEXT;
ALTER TABLE alerts ADD COLUMN time REAL;
ALTER TABLE alerts ADD COLUMN score REAL;
CREATE INDEX alerts_device ON alerts (device, idx);
