-- License names mapped to entitlement tags by operators (outpost cisco license-tags), for the
-- positions whose answer carries no tag; they take precedence over cisco.cloud.licenseTags.
CREATE TABLE cssm_license_tags (
  license    TEXT PRIMARY KEY,
  tag        TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
