-- Access requests (the portals' "Requests" tab): a user asks for a role on one VA with a
-- justification; an admin or that VA's va-admin approves (granting a role, which may differ
-- from the one asked) or denies with a reason; the requester may withdraw it while pending.
CREATE TABLE access_requests (
  id                 TEXT PRIMARY KEY,
  user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  va_id              TEXT NOT NULL REFERENCES virtual_accounts (id) ON DELETE CASCADE,
  role               TEXT NOT NULL CHECK (role IN ('va-admin', 'va-viewer')),
  justification      TEXT NOT NULL,
  state              TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'withdrawn')),
  created_at         INTEGER NOT NULL,
  decided_at         INTEGER,
  decided_by         TEXT,                -- who settled it, as events name actors (a user's name for a user)
  decided_by_user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
  granted_role       TEXT CHECK (granted_role IN ('admin', 'operator', 'auditor', 'va-admin', 'va-viewer')),
  reason             TEXT,
  CHECK ((state = 'pending') = (decided_at IS NULL)),
  CHECK ((state = 'approved') = (granted_role IS NOT NULL)),
  CHECK ((state = 'denied') = (reason IS NOT NULL))
) STRICT;
-- One pending request per user and VA; settled ones stay as the record.
CREATE UNIQUE INDEX access_requests_one_pending ON access_requests (user_id, va_id) WHERE state = 'pending';
CREATE INDEX access_requests_state_va ON access_requests (state, va_id);
CREATE INDEX access_requests_user ON access_requests (user_id, created_at);
