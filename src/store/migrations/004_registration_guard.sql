-- A registration's signature is remembered for twice the signature window, so replaying a
-- captured registration within that window changes nothing (no token use, no status, no event).
CREATE TABLE registrations_seen (
  signature_hash TEXT PRIMARY KEY,
  seen_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX registrations_seen_at ON registrations_seen (seen_at);

-- Why a device waits for an operator: new_key (a known device with another key),
-- claim_keyless (a device known from RUM files taking its first key), revive (a deregistered
-- device registering again). NULL with a pending key from before this column: new_key.
ALTER TABLE devices ADD COLUMN pending_reason TEXT;
