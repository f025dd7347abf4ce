-- Who settled a transfer: NULL when the upstream answered it, 'manual' when an operator settled
-- it by hand (POST /licenses/transfers/:id/settle), with the reason typed. Kept on the row, not
-- only in the events, because events are pruned by retention and the transfer's list shows it.
ALTER TABLE license_transfers ADD COLUMN settled_by TEXT;
ALTER TABLE license_transfers ADD COLUMN settle_reason TEXT;
