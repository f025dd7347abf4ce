-- Device lists are paged in id order, filtered by status or VA: these let SQLite walk the
-- matching rows in order and stop at the page's end, instead of sorting every match (a list of
-- stale devices, or of one VA's, took 80-120 ms at 1,000,000 devices).
CREATE INDEX devices_status_id ON devices (status, id);
CREATE INDEX devices_va_id ON devices (va_id, id);
