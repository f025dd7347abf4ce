-- The upstream as a service (outpost upstream serve): the usage bundles it has accepted and
-- not yet answered, the enrollment requests posted to it, and for each response the usage
-- bundle it answers, so that the same bundle sent again gets the same response.

ALTER TABLE bundles ADD COLUMN answers TEXT;  -- a response: the id of the usage bundle it answers
-- Responses written before this column: processing wrote a bundle and its response in one
-- transaction, at one time, so the pair is found by collector and time.
UPDATE bundles SET answers = (
  SELECT i.id FROM bundles i
  WHERE i.direction = 'in' AND i.kind = 'usage' AND i.collector_id = bundles.collector_id AND i.created_at = bundles.created_at
  ORDER BY i.sequence DESC LIMIT 1)
WHERE direction = 'out' AND kind = 'response';
CREATE INDEX bundles_answers ON bundles (answers) WHERE answers IS NOT NULL;

-- Usage bundles posted over the connection, processed one at a time in arrival order (id).
CREATE TABLE sync_jobs (
  id            INTEGER PRIMARY KEY,
  bundle_id     TEXT NOT NULL UNIQUE,
  collector_id  TEXT NOT NULL,
  sequence      INTEGER NOT NULL,
  hash          TEXT NOT NULL,
  file          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
  error_code    TEXT,
  error_message TEXT,
  received_at   INTEGER NOT NULL,
  finished_at   INTEGER
) STRICT;
CREATE INDEX sync_jobs_open ON sync_jobs (status, id) WHERE status IN ('queued', 'processing');

-- Enrollment requests posted over the connection: pinned only once the operator has compared
-- the fingerprint out of band (outpost upstream collector add --pending).
CREATE TABLE enrollment_requests (
  collector_id  TEXT PRIMARY KEY,
  public_key    TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  account_name  TEXT NOT NULL,
  file          TEXT NOT NULL,
  received_at   INTEGER NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('pending', 'enrolled')),
  response_file TEXT
) STRICT;
