-- The vendor portal's offline usage files: what each carried, device file by device file, so
-- that the portal's ACK for `dev_<id>` settles exactly the reports that file held. A device's
-- number in those files is its rowid (the portal's file names carry plain numbers).
CREATE TABLE portal_uploads (
  id         TEXT PRIMARY KEY,
  file       TEXT NOT NULL,
  time_tag   TEXT NOT NULL UNIQUE,   -- <time> in UD_VA_<time>, which the ACK archive names again
  reports    INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE portal_upload_reports (
  upload_id TEXT NOT NULL REFERENCES portal_uploads (id),
  dev_id    TEXT NOT NULL,
  report_id INTEGER NOT NULL,        -- reports.id
  PRIMARY KEY (upload_id, report_id)
) STRICT;
CREATE INDEX portal_upload_reports_dev ON portal_upload_reports (upload_id, dev_id);

-- Reports the portal has acknowledged: the portal is a destination of its own, beside the upstream.
CREATE TABLE portal_acks (
  report_id INTEGER PRIMARY KEY,     -- reports.id
  upload_id TEXT NOT NULL,
  acked_at  INTEGER NOT NULL
) STRICT;
