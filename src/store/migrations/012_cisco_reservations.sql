-- License reservations made with Cisco's cloud (CSSM), and their returns: the authorization
-- code kept for the operator (and pushed to a polled device), with what became of the delivery.
-- A row is written once CSSM has taken the request (its poll id kept), so that what CSSM issued
-- is never lost to a restart; a request CSSM refused leaves no row.
CREATE TABLE cisco_reservations (
  id                 TEXT PRIMARY KEY,
  va_id              TEXT NOT NULL REFERENCES virtual_accounts (id),
  udi                TEXT,                    -- "PID:SERIAL"; null for a request code given without one
  kind               TEXT NOT NULL CHECK (kind IN ('reserve', 'return')),
  request_code       TEXT,                    -- the device's reservation request code, or its return code
  licenses           TEXT NOT NULL,           -- JSON [{tag, quantity}] asked for ([] for a return)
  hostname           TEXT,
  poll_id            TEXT,
  authorization_code TEXT,                    -- CSSM's answer, as given (not a secret; kept out of logs)
  status             TEXT NOT NULL CHECK (status IN ('polling', 'complete', 'failed')),
  message            TEXT,                    -- CSSM's words when it failed or had not answered yet
  polled_device_id   TEXT,                    -- the polled IOS-XE device the code goes to, if any
  created_at         INTEGER NOT NULL,
  delivered_at       INTEGER,
  delivery_attempts  INTEGER NOT NULL DEFAULT 0,
  delivery_error     TEXT
) STRICT;
CREATE INDEX cisco_reservations_undelivered ON cisco_reservations (created_at)
  WHERE polled_device_id IS NOT NULL AND delivered_at IS NULL AND status = 'complete';
