-- A report's tags as the JSON array that a usage bundle carries, written once at ingest, so
-- that an export copies them instead of building the array for each of millions of reports.
ALTER TABLE reports RENAME COLUMN tags TO tags_json;
UPDATE reports SET tags_json = CASE WHEN tags_json = '' THEN '[]'
  ELSE '["' || replace(replace(replace(tags_json, '\', '\\'), '"', '\"'), char(10), '","') || '"]' END;
