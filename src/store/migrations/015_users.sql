-- Operators: local users with argon2id password hashes, their roles (global, or on one VA),
-- and the API tokens they make for scripts (only a SHA-256 of each secret is kept: the secret
-- is 32 random bytes, shown once).
CREATE TABLE users (
  id                  TEXT PRIMARY KEY,
  name                TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash       TEXT NOT NULL,
  status              TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  failed_logins       INTEGER NOT NULL DEFAULT 0,
  locked_until        INTEGER,
  password_changed_at INTEGER NOT NULL,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE user_roles (
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role    TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'va-admin', 'va-viewer')),
  va_id   TEXT NOT NULL DEFAULT '',   -- '' for the global roles; a VA's id for va-admin and va-viewer
  PRIMARY KEY (user_id, role, va_id),
  CHECK ((role IN ('va-admin', 'va-viewer')) = (va_id != ''))
) STRICT;

CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,
  roles_json   TEXT NOT NULL,          -- the roles it carries: the user's, or fewer
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  revoked_at   INTEGER,
  last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
