-- What stays of a raw report once retention has pruned it: enough to answer a replay as today
-- (same content: duplicate; other content: refused as a reused id) and to tell a grown RUM
-- report from a new one. report_pk is the pruned row's id: a grown copy comes back under it,
-- so the destinations (which know reports by that id) see the same report again, not a new one.
CREATE TABLE report_tombstones (
  device_id         TEXT NOT NULL,
  source            TEXT NOT NULL CHECK (source IN ('device', 'rum')),
  report_id         TEXT NOT NULL,
  report_pk         INTEGER NOT NULL,
  content_hash      TEXT NOT NULL,
  measurement_count INTEGER NOT NULL,
  received_at       INTEGER NOT NULL,
  pruned_at         INTEGER NOT NULL,
  PRIMARY KEY (device_id, source, report_id)
) STRICT, WITHOUT ROWID;
