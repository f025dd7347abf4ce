-- Labels: the portals' custom tags, named "labels" because a tag is an entitlement tag here.
-- Local only: nothing that leaves the site (bundles, syncs, the Cisco paths) reads these tables.
-- A label is collector-wide; name_key (the name in lower case) keeps names unique whatever their case.
CREATE TABLE labels (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  name_key    TEXT NOT NULL UNIQUE,
  colour      TEXT NOT NULL CHECK (length(colour) = 7 AND colour GLOB '#[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),
  description TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

-- Keyed (label, object) so that a label filter is a range of the primary key; the second index
-- answers "which labels does this object carry" for every row a list shows.
CREATE TABLE device_labels (
  label_id  TEXT NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  PRIMARY KEY (label_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX device_labels_device ON device_labels (device_id, label_id);

CREATE TABLE line_labels (
  label_id TEXT NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
  line_id  TEXT NOT NULL REFERENCES entitlements (id) ON DELETE CASCADE,
  PRIMARY KEY (label_id, line_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX line_labels_line ON line_labels (line_id, label_id);

-- An entitlement snapshot (from the upstream or Cisco) replaces a VA's lines with new rows and
-- new ids, which would drop every label on them. A line's labels are therefore remembered by
-- what identifies the line across snapshots (VA, tag, kind, start, end; not the quantity, which
-- a snapshot may change) and given back to the line that arrives with that identity. Detaching
-- a label from a line forgets it here too (LabelRepository.detachLines).
CREATE TABLE line_label_carry (
  label_id  TEXT NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
  va_id     TEXT NOT NULL,
  tag       TEXT NOT NULL,
  kind      TEXT NOT NULL,
  starts_at INTEGER NOT NULL,
  ends_at   INTEGER NOT NULL, -- -1: no end
  PRIMARY KEY (va_id, tag, kind, starts_at, ends_at, label_id)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER line_labels_carry_out BEFORE DELETE ON entitlements
BEGIN
  INSERT OR IGNORE INTO line_label_carry (label_id, va_id, tag, kind, starts_at, ends_at)
    SELECT label_id, OLD.va_id, OLD.tag, OLD.kind, OLD.starts_at, coalesce(OLD.ends_at, -1) FROM line_labels WHERE line_id = OLD.id;
END;

CREATE TRIGGER line_labels_carry_in AFTER INSERT ON entitlements
BEGIN
  INSERT OR IGNORE INTO line_labels (label_id, line_id)
    SELECT label_id, NEW.id FROM line_label_carry
    WHERE va_id = NEW.va_id AND tag = NEW.tag AND kind = NEW.kind AND starts_at = NEW.starts_at AND ends_at = coalesce(NEW.ends_at, -1);
END;
