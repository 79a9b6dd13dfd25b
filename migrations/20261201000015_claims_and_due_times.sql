-- No delivery is stranded, none is sent twice at once: every undelivered delivery
-- has a due time (the scheduler re-sends it if its message is lost), and a sender
-- claims a delivery in the statement that loads it (`claimed_until`), so further
-- messages naming it are skipped while the claim lives.
ALTER TABLE deliveries ADD COLUMN claimed_until timestamptz;
-- Room in each page for the claim's in-place (HOT) update: claimed_until is in no
-- index, so with space on its page the claim adds no index entries.
ALTER TABLE deliveries SET (fillfactor = 50);
UPDATE deliveries SET next_attempt_at = now()
WHERE status IN ('pending', 'failed') AND next_attempt_at IS NULL;
