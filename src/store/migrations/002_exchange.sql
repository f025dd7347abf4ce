-- The disconnected exchange: bundles written and read, the upstream's pinned keys, and the
-- versions of what the upstream owns (entitlement snapshots per VA).

-- The tags a report measures, kept at ingest so an export never re-parses 3M bodies.
ALTER TABLE reports ADD COLUMN tags TEXT NOT NULL DEFAULT '';
CREATE INDEX reports_pending ON reports (id) WHERE ack_status = 'pending';

CREATE TABLE bundles (
  id          TEXT PRIMARY KEY,
  direction   TEXT NOT NULL CHECK (direction IN ('out', 'in')),
  kind        TEXT NOT NULL,
  sequence    INTEGER NOT NULL,
  hash        TEXT NOT NULL UNIQUE,  -- SHA-256 of the manifest
  file        TEXT NOT NULL,
  period      TEXT,
  records     INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  answers     TEXT,                  -- responses: the id of the usage bundle answered
  forced      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE upstream_keys (
  key_id      TEXT PRIMARY KEY,       -- the key's fingerprint
  public_key  TEXT NOT NULL,          -- base64 raw ed25519
  status      TEXT NOT NULL CHECK (status IN ('active', 'retired')),
  added_at    INTEGER NOT NULL,
  retired_at  INTEGER,
  grace_until INTEGER,                -- bundles in transit under a rotated key stay valid until then...
  until_sequence INTEGER              -- ...if numbered below the sequence from which the new key signs
) STRICT;

CREATE TABLE entitlement_versions (
  va_id   TEXT PRIMARY KEY,
  version INTEGER NOT NULL
) STRICT;
