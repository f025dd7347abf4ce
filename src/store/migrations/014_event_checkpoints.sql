-- Signed checkpoints of the audit trail's head. The chain alone can be rewritten whole by
-- whoever can write this file; a checkpoint is signed by the collector's key, so a rewrite
-- shows against every checkpoint made before it (and against the copies kept elsewhere).
CREATE TABLE event_checkpoints (
  id           INTEGER PRIMARY KEY,
  collector_id TEXT NOT NULL,
  key_id       TEXT NOT NULL,
  event_id     INTEGER NOT NULL,
  hash         TEXT NOT NULL,
  count        INTEGER NOT NULL,
  at           INTEGER NOT NULL,
  signature    TEXT NOT NULL,
  reason       TEXT NOT NULL    -- schedule, export, sync-part, manual
) STRICT;
CREATE INDEX event_checkpoints_event ON event_checkpoints (event_id);
