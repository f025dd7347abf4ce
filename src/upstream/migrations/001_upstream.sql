-- The reference upstream: accounts, the collectors it trusts, what each account owns, and
-- every report it has counted (once, however many bundles or collectors carry it).

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE accounts (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE collectors (
  id                 TEXT PRIMARY KEY,
  account_id         TEXT NOT NULL REFERENCES accounts (id),
  public_key         TEXT NOT NULL,
  key_id             TEXT NOT NULL,
  usage_hwm          INTEGER NOT NULL DEFAULT 0,  -- highest usage sequence processed
  out_seq            INTEGER NOT NULL DEFAULT 0,  -- our responses to it
  last_answered_hash TEXT,                        -- hash of the last response it has applied, as it told us
  added_at           INTEGER NOT NULL
) STRICT;

-- Collector keys retired by rotation: valid for bundles in transit (numbered below
-- until_sequence) until grace_until.
CREATE TABLE collector_keys (
  key_id         TEXT PRIMARY KEY,
  collector_id   TEXT NOT NULL REFERENCES collectors (id),
  public_key     TEXT NOT NULL,
  until_sequence INTEGER NOT NULL,
  grace_until    INTEGER NOT NULL,
  retired_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE virtual_accounts (
  id         TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL DEFAULT 0,  -- the entitlement snapshot version
  announced  INTEGER NOT NULL DEFAULT 0,  -- sent to a collector: its id is fixed from then on
  created_at INTEGER NOT NULL,
  UNIQUE (account_id, name)
) STRICT;

-- The product catalog: a tag not listed here is unknown, and reports of it are rejected.
CREATE TABLE tags (
  tag          TEXT PRIMARY KEY,
  display_name TEXT NOT NULL
) STRICT;

CREATE TABLE entitlements (
  id           TEXT PRIMARY KEY,
  va_id        TEXT NOT NULL REFERENCES virtual_accounts (id),
  tag          TEXT NOT NULL REFERENCES tags (tag),
  display_name TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('perpetual', 'subscription', 'term', 'unlimited')),
  quantity     INTEGER NOT NULL,
  starts_at    INTEGER NOT NULL,
  ends_at      INTEGER,
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
  udi        TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  collector_id TEXT NOT NULL,
  device_id  TEXT NOT NULL,
  va_id      TEXT,
  hostname   TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

-- Rows append in arrival order; the unique key is a separate, narrow index, so that counting
-- a report once costs an index probe rather than moving bodies around a clustered table.
CREATE TABLE reports (
  id           INTEGER PRIMARY KEY,
  account_id   TEXT NOT NULL,
  udi          TEXT NOT NULL,
  report_id    TEXT NOT NULL,
  measurements INTEGER NOT NULL,
  tags         TEXT NOT NULL,
  body         TEXT NOT NULL,
  collector_id TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  UNIQUE (account_id, udi, report_id)
) STRICT;

CREATE TABLE bundles (
  id           TEXT PRIMARY KEY,
  collector_id TEXT NOT NULL,
  direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  kind         TEXT NOT NULL,
  sequence     INTEGER NOT NULL,
  hash         TEXT NOT NULL UNIQUE,
  file         TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  forced       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE events (
  id      INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  subject TEXT,
  details TEXT NOT NULL
) STRICT;
