-- Notices: notifications that are not of an alert (an access request waiting for its approvers,
-- its outcome for its requester), written to the outbox in the transaction of the change they
-- tell of. SQLite cannot widen a CHECK in place: the table is rebuilt with 'notice' allowed.
CREATE TABLE notifications_next (
  id              INTEGER PRIMARY KEY,
  channel         TEXT NOT NULL CHECK (channel IN ('email', 'syslog', 'webhook')),
  target          TEXT NOT NULL,       -- a sink's id, or a subscriber's user id
  event           TEXT NOT NULL CHECK (event IN ('opened', 'resolved', 'digest', 'notice')),
  alert_id        INTEGER,             -- null for a digest or a notice
  kind            TEXT NOT NULL,       -- the alert's kind; 'digest'; a notice's kind (access_request)
  subject         TEXT NOT NULL,       -- the alert's subject; a digest's day; a notice's subject (the request id)
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
INSERT INTO notifications_next (id, channel, target, event, alert_id, kind, subject, severity, va_id, message, details_json, count, state, attempts, next_at,
                                claimed_at, last_error, last_error_at, last_attempt_at, sent_at, created_at)
  SELECT id, channel, target, event, alert_id, kind, subject, severity, va_id, message, details_json, count, state, attempts, next_at,
         claimed_at, last_error, last_error_at, last_attempt_at, sent_at, created_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_next RENAME TO notifications;
CREATE INDEX notifications_due ON notifications (state, next_at) WHERE state = 'pending';
CREATE INDEX notifications_repeat ON notifications (channel, target, kind, subject, event, created_at);
CREATE INDEX notifications_channel ON notifications (channel, state);
CREATE UNIQUE INDEX notifications_digest ON notifications (target, subject) WHERE event = 'digest';
