-- The signed checkpoints of their audit trails that collectors' usage bundles carry: kept here,
-- out of reach of whoever can write a collector's store, and exported for its audits.
CREATE TABLE event_checkpoints (
  id           INTEGER PRIMARY KEY,
  collector_id TEXT NOT NULL REFERENCES collectors (id),
  key_id       TEXT NOT NULL,
  event_id     INTEGER NOT NULL,
  hash         TEXT NOT NULL,
  count        INTEGER NOT NULL,
  at           TEXT NOT NULL,      -- as signed: the ISO 8601 text
  signature    TEXT NOT NULL,
  bundle_id    TEXT NOT NULL,      -- the first bundle that carried it
  received_at  INTEGER NOT NULL,
  UNIQUE (collector_id, signature)
) STRICT;
CREATE INDEX event_checkpoints_collector ON event_checkpoints (collector_id, event_id);
