-- One report can go to more than one destination: the Outpost upstream (by bundle or sync),
-- the vendor portal (by its offline upload file), and Cisco's cloud. Each report now waits,
-- and is acknowledged, per destination; it is settled when no destination still waits for it.
-- Which destinations a report is meant for is decided when it arrives (see usage/destinations.ts).
CREATE TABLE report_pending_by_destination (
  destination TEXT NOT NULL CHECK (destination IN ('outpost', 'portal', 'cssm')),
  report_id   INTEGER NOT NULL,    -- reports.id
  since       INTEGER NOT NULL,    -- when this version of the report arrived
  PRIMARY KEY (destination, report_id)
) STRICT, WITHOUT ROWID;
INSERT INTO report_pending_by_destination (destination, report_id, since) SELECT 'outpost', report_id, since FROM report_pending;
DROP TABLE report_pending;
ALTER TABLE report_pending_by_destination RENAME TO report_pending;

CREATE TABLE report_acks_by_destination (
  destination TEXT NOT NULL CHECK (destination IN ('outpost', 'portal', 'cssm')),
  report_id   INTEGER NOT NULL,    -- reports.id
  status      TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
  reason      TEXT,
  acked_at    INTEGER NOT NULL,
  PRIMARY KEY (destination, report_id)
) STRICT, WITHOUT ROWID;
INSERT INTO report_acks_by_destination (destination, report_id, status, reason, acked_at)
  SELECT 'outpost', report_id, status, reason, acked_at FROM report_acks;
-- The portal's acknowledgements join the others; which upload carried each report stays in portal_upload_reports.
INSERT INTO report_acks_by_destination (destination, report_id, status, reason, acked_at)
  SELECT 'portal', report_id, 'accepted', NULL, acked_at FROM portal_acks;
DROP TABLE report_acks;
DROP TABLE portal_acks;
ALTER TABLE report_acks_by_destination RENAME TO report_acks;

-- The version of each report a portal upload carried (its wait's `since`): the portal's ACK
-- settles that version only, never a copy that grew after the upload was written.
ALTER TABLE portal_upload_reports ADD COLUMN since INTEGER;
