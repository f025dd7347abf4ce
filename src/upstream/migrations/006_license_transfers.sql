-- License transfers between the VAs of an account, as collectors send them (format version 2).
-- Each is applied to the upstream's ledger once, or refused with a reason; a transfer sent
-- again (in the next bundle, or every part of a sync, until the collector has the answer) is
-- answered from here and changes nothing.
CREATE TABLE license_transfers (
  collector_id TEXT NOT NULL REFERENCES collectors (id),
  transfer_id  TEXT NOT NULL,
  account_id   TEXT NOT NULL,
  from_va_id   TEXT NOT NULL,
  to_va_id     TEXT NOT NULL,
  tag          TEXT NOT NULL,
  quantity     INTEGER NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('confirmed', 'refused')),
  reason       TEXT,
  applied_at   INTEGER NOT NULL,
  PRIMARY KEY (collector_id, transfer_id)
) STRICT;
