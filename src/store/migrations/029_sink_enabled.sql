-- A sink an admin has turned off keeps its settings and its history but is given no new
-- notifications until it is turned on again (PATCH /notifications/sinks/:id).
ALTER TABLE notify_sinks ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
