-- A collector restored from a backup starts a new epoch (a statement signed with its key): its
-- usage sequence starts again from where the backup left it, and bundles of an earlier epoch
-- are refused. 0: never restored.
ALTER TABLE collectors ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
