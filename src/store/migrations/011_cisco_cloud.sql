-- Cisco's cloud (CSSM) as an upstream, through its public REST API.

-- Each upload of one device's RUM reports, recorded before it is sent and given its poll_id as
-- soon as CSSM answers, so that a restart polls what was uploaded and never uploads it again.
CREATE TABLE cssm_uploads (
  id          TEXT PRIMARY KEY,
  device_id   TEXT NOT NULL,           -- devices.id
  cssm_va_id  TEXT NOT NULL,           -- the CSSM virtual account it went to
  state       TEXT NOT NULL CHECK (state IN ('uploading', 'polling', 'complete', 'already_uploaded', 'failed')),
  poll_id     TEXT,
  reports     INTEGER NOT NULL,
  polls       INTEGER NOT NULL DEFAULT 0,
  message     TEXT,                    -- CSSM's words, for a failure or an already-uploaded report
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX cssm_uploads_open ON cssm_uploads (state) WHERE state IN ('uploading', 'polling');

-- The version of each report an upload carried (its wait's `since`): CSSM's ACK settles that version only.
CREATE TABLE cssm_upload_reports (
  upload_id TEXT NOT NULL REFERENCES cssm_uploads (id),
  report_id INTEGER NOT NULL,          -- reports.id
  since     INTEGER NOT NULL,
  PRIMARY KEY (upload_id, report_id)
) STRICT;
CREATE INDEX cssm_upload_reports_report ON cssm_upload_reports (report_id);

-- License positions as CSSM last gave them, per CSSM virtual account and license: every one is
-- kept and shown, with or without an entitlement tag (only tagged ones become entitlements).
CREATE TABLE cssm_positions (
  va_id       TEXT NOT NULL,           -- the local VA it is mapped to
  cssm_va     TEXT NOT NULL,
  license     TEXT NOT NULL,
  tag         TEXT,
  quantity    INTEGER NOT NULL,
  in_use      INTEGER NOT NULL,
  available   INTEGER,
  status      TEXT,
  read_at     INTEGER NOT NULL,
  PRIMARY KEY (va_id, license)
) STRICT;

-- Which upstream kind's snapshots a VA's entitlements are: a snapshot of another kind replaces
-- them whatever its version (each kind numbers its own).
ALTER TABLE entitlement_versions ADD COLUMN lineage TEXT NOT NULL DEFAULT 'outpost' CHECK (lineage IN ('outpost', 'cisco'));

-- ACKs waiting to be delivered to their device, whichever destination answered (the portal's
-- file, or CSSM through its API).
CREATE TABLE ack_deliveries (
  destination  TEXT NOT NULL CHECK (destination IN ('portal', 'cssm')),
  upload_id    TEXT NOT NULL,
  dev_id       TEXT NOT NULL,          -- the device's rowid, as the portal's file names carry it
  content      BLOB NOT NULL,          -- the ACK, byte for byte
  has_policy   INTEGER NOT NULL,
  received_at  INTEGER NOT NULL,
  delivered_at INTEGER,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  PRIMARY KEY (destination, upload_id, dev_id)
) STRICT;
CREATE INDEX ack_deliveries_dev ON ack_deliveries (dev_id);
INSERT INTO ack_deliveries (destination, upload_id, dev_id, content, has_policy, received_at, delivered_at, attempts, last_error)
  SELECT 'portal', upload_id, dev_id, content, has_policy, received_at, delivered_at, attempts, last_error FROM portal_deliveries;
DROP TABLE portal_deliveries;
