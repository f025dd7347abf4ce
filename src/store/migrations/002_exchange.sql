-- The disconnected exchange: bundles written and read, the upstream's pinned keys, and the
-- versions of what the upstream owns (entitlement snapshots per VA).

-- The tags a report measures, kept at ingest so an export never re-parses 3M bodies.
ALTER TABLE reports ADD COLUMN tags TEXT NOT NULL DEFAULT '';

-- Reports awaiting the upstream's ACK, and the ACKs received: narrow tables beside the wide
-- reports rows, so that settling millions of reports never rewrites their bodies.
CREATE TABLE report_pending (
  report_id INTEGER PRIMARY KEY,   -- reports.id
  since     INTEGER NOT NULL       -- when this version of the report arrived
) STRICT;

CREATE TABLE report_acks (
  report_id INTEGER PRIMARY KEY,   -- reports.id
  status    TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
  reason    TEXT,
  acked_at  INTEGER NOT NULL
) STRICT;
-- Reports that existed before this migration wait for an ACK like any other.
INSERT INTO report_pending (report_id, since) SELECT id, received_at FROM reports;

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
