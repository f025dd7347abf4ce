-- Daily in-use and owned per VA and tag, kept for trends and the shortage forecast. Small (one
-- row per VA, tag and day) and never pruned: retention prunes raw reports, never this table.
-- No reference to virtual_accounts: a VA deleted later keeps its past.
CREATE TABLE usage_history (
  va_id      TEXT NOT NULL,
  tag        TEXT NOT NULL,
  -- The calendar day in the collector's time zone (time.zone), YYYY-MM-DD: sorts as it reads.
  day        TEXT NOT NULL,
  -- The highest in-use seen that day.
  in_use     INTEGER NOT NULL CHECK (in_use >= 0),
  -- What the VA owned at the day's last sample; NULL means unlimited.
  owned      INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (va_id, tag, day)
) WITHOUT ROWID;
