-- The portal's ACK for each device file, kept until it is delivered to its device through the
-- device's REST API (/smartlic-service/import): delivery is retried until it succeeds, across restarts.
CREATE TABLE portal_deliveries (
  upload_id    TEXT NOT NULL REFERENCES portal_uploads (id),
  dev_id       TEXT NOT NULL,
  content      BLOB NOT NULL,          -- the ACK file, byte for byte
  has_policy   INTEGER NOT NULL,
  received_at  INTEGER NOT NULL,
  delivered_at INTEGER,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  PRIMARY KEY (upload_id, dev_id)
) STRICT;

-- Which collector device a polled device's reports belong to: where its ACKs go back.
ALTER TABLE polled_devices ADD COLUMN device_id TEXT;
