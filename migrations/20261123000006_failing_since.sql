-- When an endpoint's current run of failed attempts began (NULL: its last attempt
-- succeeded). An endpoint failing for too long is disabled with a reason.
ALTER TABLE endpoints ADD COLUMN failing_since timestamptz;
