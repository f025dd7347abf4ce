-- The console's device table: a search is a prefix of the serial, product id, hostname or id,
-- and the table sorts by these columns, paged by (key, id). Without these, a search read every
-- device (SCAN devices, 23 ms at 100,000 and ten times that at 1,000,000) and a sort sorted
-- them all. None of these columns changes when a device reports, so ingest never updates them;
-- last_seen_at stays unindexed for the reason 001_core.sql gives (a sort by it is a bounded
-- top-N sort, within a VA when filtered).
CREATE INDEX devices_serial_id ON devices (udi_serial, id);
CREATE INDEX devices_pid_id ON devices (udi_pid, id);
CREATE INDEX devices_hostname_id ON devices (hostname, id);
CREATE INDEX devices_registered_id ON devices (registered_at, id);
-- The overview counts the last day's events by type: without this it read the whole trail
-- (SCAN events), which only grows. Events are appended, never updated: one more insert each.
CREATE INDEX events_at_type ON events (at, type, va_id);
