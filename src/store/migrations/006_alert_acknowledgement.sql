-- An operator may acknowledge an open alert: who, when and why, and what it stood at then
-- (its severity, and for a shortage how many short), so that a worse state unacknowledges it.
ALTER TABLE alerts ADD COLUMN acked_at INTEGER;
ALTER TABLE alerts ADD COLUMN acked_by TEXT;
ALTER TABLE alerts ADD COLUMN ack_reason TEXT;
ALTER TABLE alerts ADD COLUMN acked_severity TEXT;
ALTER TABLE alerts ADD COLUMN acked_level INTEGER;
