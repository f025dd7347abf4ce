-- The VA an alert is about, for the roles held on one VA: read from its details (or, for the
-- device alerts, its subject, which is the VA). Computed, never stored apart from the alert.
ALTER TABLE alerts ADD COLUMN va_id TEXT GENERATED ALWAYS AS (
  coalesce(json_extract(details, '$.vaId'), CASE WHEN kind IN ('device_stale', 'device_silent') THEN subject END)
) VIRTUAL;
