-- IOS-XE product instances the collector polls over their Smart Licensing REST API. The
-- password is encrypted (AES-256-GCM) with a key kept apart from the database, in data/keys/.
CREATE TABLE polled_devices (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  host            TEXT NOT NULL,
  port            INTEGER NOT NULL,
  username        TEXT NOT NULL,
  password_enc    TEXT NOT NULL,
  va_id           TEXT NOT NULL REFERENCES virtual_accounts (id),
  tls_mode        TEXT NOT NULL CHECK (tls_mode IN ('ca', 'pin', 'insecure')),
  tls_pin         TEXT,            -- SHA-256 of the device certificate (DER), hex pairs
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  last_poll_at    INTEGER,
  last_success_at INTEGER,
  last_error      TEXT,
  reports         INTEGER NOT NULL DEFAULT 0,
  UNIQUE (host, port)
) STRICT;
