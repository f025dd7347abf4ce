-- License transfers between virtual accounts. The local ledger changes at once (source lines
-- debited, destination lines credited and marked with the transfer); the transfer stays
-- provisional until the upstream confirms or refuses it, and is laid over every entitlement
-- snapshot that arrives meanwhile (licenses/transfers.ts).
CREATE TABLE license_transfers (
  id           TEXT PRIMARY KEY,
  from_va_id   TEXT NOT NULL REFERENCES virtual_accounts (id),
  to_va_id     TEXT NOT NULL REFERENCES virtual_accounts (id),
  tag          TEXT NOT NULL,
  quantity     INTEGER NOT NULL CHECK (quantity > 0),
  reason       TEXT,
  state        TEXT NOT NULL CHECK (state IN ('provisional', 'confirmed', 'refused')),
  -- The lines taken from the source, as JSON [{displayName, kind, quantity, startsAt, endsAt}]:
  -- what the destination holds, what a snapshot is debited again, what a refusal gives back.
  pieces       TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  settled_at   INTEGER,
  refusal      TEXT,
  -- With Cisco's cloud as the upstream: when Cisco accepted the transfer call, and the
  -- destination's quantity of the license at Cisco then; the positions read that shows the
  -- destination holding that much more confirms it.
  cisco_sent_at       INTEGER,
  cisco_target_before INTEGER
) STRICT;
CREATE INDEX license_transfers_state ON license_transfers (state, requested_at);

-- A destination line credited by a provisional or confirmed transfer (NULL: a line as the upstream gave it).
ALTER TABLE entitlements ADD COLUMN transfer_id TEXT;
