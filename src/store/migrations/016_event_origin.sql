-- Where a change came from: the caller's address for an HTTP request, 'socket' for the local
-- CLI; null for what the collector does by itself (schedules). Covered by the chain's hash
-- when it is set, so an event from before keeps the hash it had.
ALTER TABLE events ADD COLUMN origin TEXT;
