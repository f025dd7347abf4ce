-- Collector core: accounts, tokens, devices, reports, the usage ledger, events and alerts.
-- Times are unix milliseconds. Tables are STRICT so a wrong type is an error, not a coercion.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE virtual_accounts (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  -- 'local' until the upstream, which owns the VA list, confirms it.
  origin      TEXT NOT NULL CHECK (origin IN ('local', 'upstream')),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX virtual_accounts_name ON virtual_accounts (name COLLATE NOCASE);

CREATE TABLE tokens (
  id          TEXT PRIMARY KEY,
  va_id       TEXT NOT NULL REFERENCES virtual_accounts (id),
  secret_hash TEXT NOT NULL UNIQUE,  -- SHA-256 of the secret; the secret itself is shown once
  description TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,
  max_uses    INTEGER NOT NULL CHECK (max_uses > 0),
  uses        INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX tokens_va ON tokens (va_id);

CREATE TABLE devices (
  id                 TEXT PRIMARY KEY,
  va_id              TEXT NOT NULL REFERENCES virtual_accounts (id),
  udi_pid            TEXT NOT NULL,
  udi_serial         TEXT NOT NULL,
  hostname           TEXT NOT NULL DEFAULT '',
  software_version   TEXT NOT NULL DEFAULT '',
  public_key         TEXT,            -- base64 raw ed25519; NULL for devices known only from RUM files
  pending_public_key TEXT,            -- a re-key waiting for an operator
  pending_since      INTEGER,
  status             TEXT NOT NULL CHECK (status IN ('active', 'stale', 'deregistered')),
  source             TEXT NOT NULL CHECK (source IN ('registered', 'rum')),
  registered_at      INTEGER NOT NULL,
  last_seen_at       INTEGER,
  last_seq           INTEGER,
  UNIQUE (udi_pid, udi_serial)
) STRICT;
CREATE INDEX devices_va ON devices (va_id, status);
-- No index on last_seen_at: it changes with every report, and the scheduled scans that read it
-- (silent and stale devices) are cheaper as a scan every few minutes than as an index update per report.

-- Every UDI a device answers to: its own, and those of the other units of an HA pair.
CREATE TABLE device_udis (
  udi       TEXT PRIMARY KEY,  -- "PID:SERIAL"
  device_id TEXT NOT NULL REFERENCES devices (id)
) STRICT;
CREATE INDEX device_udis_device ON device_udis (device_id);

CREATE TABLE reports (
  id                INTEGER PRIMARY KEY,
  device_id         TEXT NOT NULL,
  source            TEXT NOT NULL CHECK (source IN ('device', 'rum')),
  report_id         TEXT NOT NULL,   -- device reports: as sent; RUM: "PID:SERIAL:report_id"
  seq               INTEGER,
  generated_at      INTEGER,
  received_at       INTEGER NOT NULL,
  content_hash      TEXT NOT NULL,
  body              TEXT NOT NULL,   -- the report as received; RUM: the original element, verbatim
  measurement_count INTEGER NOT NULL,
  UNIQUE (device_id, source, report_id)
) STRICT;

-- Current usage per device and tag: the measurement with the latest period end wins.
CREATE TABLE device_usage (
  device_id  TEXT NOT NULL,
  tag        TEXT NOT NULL,
  count      INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  report_pk  INTEGER NOT NULL,
  PRIMARY KEY (device_id, tag)
) STRICT, WITHOUT ROWID;

-- In use per VA and tag, kept current incrementally: the sum of device_usage over active devices.
CREATE TABLE va_usage (
  va_id   TEXT NOT NULL,
  tag     TEXT NOT NULL,
  in_use  INTEGER NOT NULL,
  devices INTEGER NOT NULL,
  PRIMARY KEY (va_id, tag)
) STRICT, WITHOUT ROWID;

CREATE TABLE entitlements (
  id           TEXT PRIMARY KEY,
  va_id        TEXT NOT NULL REFERENCES virtual_accounts (id),
  tag          TEXT NOT NULL,
  display_name TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('perpetual', 'subscription', 'term', 'unlimited')),
  quantity     INTEGER NOT NULL CHECK (quantity >= 0),
  starts_at    INTEGER NOT NULL,
  ends_at      INTEGER,               -- NULL: no end (perpetual, unlimited)
  created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX entitlements_va ON entitlements (va_id, tag);

-- Append-only audit trail; each row chains the hash of the one before it.
CREATE TABLE events (
  id        INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  type      TEXT NOT NULL,
  actor     TEXT NOT NULL,
  subject   TEXT,
  va_id     TEXT,
  details   TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
) STRICT;
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_subject ON events (subject, id);

CREATE TABLE alerts (
  id            INTEGER PRIMARY KEY,
  kind          TEXT NOT NULL,
  subject       TEXT NOT NULL,
  severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  message       TEXT NOT NULL,
  details       TEXT NOT NULL,
  first_seen_at INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL,
  cleared_at    INTEGER
) STRICT;
CREATE UNIQUE INDEX alerts_open ON alerts (kind, subject) WHERE cleared_at IS NULL;
CREATE INDEX alerts_cleared ON alerts (cleared_at, id);

-- Refusals for security reasons, counted rather than logged one by one.
CREATE TABLE refusals (
  reason  TEXT PRIMARY KEY,
  count   INTEGER NOT NULL,
  last_at INTEGER NOT NULL
) STRICT;
