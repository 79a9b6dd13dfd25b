-- Retries: deliveries may end `dead` (no more attempts, reason in last_error), and an
-- endpoint disabled by the system (410 Gone) says why.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'delivered', 'failed', 'dead', 'cancelled'));
ALTER TABLE endpoints ADD COLUMN disabled_reason text;
