-- Notifications of alerts. Sinks (syslog, webhook) are configured by an admin; each user may
-- subscribe to alerts by e-mail. The outbox holds one row per notification to deliver: it is
-- written in the transaction that opens or resolves the alert, so a notification is never lost
-- to a crash between the two, and a pending one survives a restart.
CREATE TABLE notify_sinks (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
  kind        TEXT NOT NULL CHECK (kind IN ('syslog', 'webhook')),
  target_json TEXT NOT NULL,           -- where it goes: syslog host/port/transport/facility, or webhook url/secretFile
  filter_json TEXT NOT NULL,           -- severities, vaIds (null: all), kinds (null: all)
  resolutions INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE notify_subscriptions (
  user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  email       TEXT NOT NULL,
  filter_json TEXT NOT NULL,           -- severities, vaIds (null: all)
  resolutions INTEGER NOT NULL DEFAULT 0,
  digest      INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE notifications (
  id              INTEGER PRIMARY KEY,
  channel         TEXT NOT NULL CHECK (channel IN ('email', 'syslog', 'webhook')),
  target          TEXT NOT NULL,       -- a sink's id, or a subscriber's user id
  event           TEXT NOT NULL CHECK (event IN ('opened', 'resolved', 'digest')),
  alert_id        INTEGER,
  kind            TEXT NOT NULL,
  subject         TEXT NOT NULL,       -- the alert's subject; a digest's day
  severity        TEXT NOT NULL,
  va_id           TEXT,
  message         TEXT NOT NULL,
  details_json    TEXT NOT NULL,
  count           INTEGER NOT NULL DEFAULT 1,  -- repeats coalesced into this one
  state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_at         INTEGER NOT NULL,
  claimed_at      INTEGER,             -- a delivery in flight; cleared at start (none survives a restart)
  last_error      TEXT,
  last_error_at   INTEGER,
  last_attempt_at INTEGER,
  sent_at         INTEGER,
  created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX notifications_due ON notifications (state, next_at) WHERE state = 'pending';
CREATE INDEX notifications_repeat ON notifications (channel, target, kind, subject, event, created_at);
CREATE INDEX notifications_channel ON notifications (channel, state);
CREATE UNIQUE INDEX notifications_digest ON notifications (target, subject) WHERE event = 'digest';
