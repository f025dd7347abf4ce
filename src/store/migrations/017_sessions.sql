-- Browser sessions (for the web console): only a SHA-256 of the cookie's secret is kept, with
-- the CSRF token the session's state-changing requests must carry, and its two deadlines.
CREATE TABLE sessions (
  id           TEXT PRIMARY KEY,
  secret_hash  TEXT NOT NULL UNIQUE,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token   TEXT NOT NULL,
  origin       TEXT,
  created_at   INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,        -- the absolute timeout
  ended_at     INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
