-- Small integer keys for accounts and collectors, carried by each report in place of their
-- text ids: the index that counts a report once (account, UDI, report id) and the rows it
-- points to get narrower, and merging 3M reports gets about a fifth faster.
ALTER TABLE accounts ADD COLUMN num INTEGER;
UPDATE accounts SET num = rowid;
CREATE UNIQUE INDEX accounts_num ON accounts (num);

ALTER TABLE collectors ADD COLUMN num INTEGER;
UPDATE collectors SET num = rowid;
CREATE UNIQUE INDEX collectors_num ON collectors (num);

CREATE TABLE reports_v2 (
  id           INTEGER PRIMARY KEY,
  account      INTEGER NOT NULL,   -- accounts.num
  udi          TEXT NOT NULL,
  report_id    TEXT NOT NULL,
  measurements INTEGER NOT NULL,
  tags         TEXT NOT NULL,      -- newline-separated
  body         TEXT NOT NULL,
  collector    INTEGER NOT NULL,   -- collectors.num: the last to send it
  received_at  INTEGER NOT NULL,
  UNIQUE (account, udi, report_id)
) STRICT;
INSERT INTO reports_v2 (id, account, udi, report_id, measurements, tags, body, collector, received_at)
  SELECT r.id, a.num, r.udi, r.report_id, r.measurements, r.tags, r.body, c.num, r.received_at
  FROM reports r JOIN accounts a ON a.id = r.account_id JOIN collectors c ON c.id = r.collector_id;
DROP TABLE reports;
ALTER TABLE reports_v2 RENAME TO reports;
