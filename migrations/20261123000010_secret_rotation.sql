-- Secret rotation: each secret rotated out keeps signing (beside the current one)
-- until its own grace period ends, so subscribers can switch without dropping a
-- message, even when rotations follow each other. Parallel arrays, newest first.
ALTER TABLE endpoints
    ADD COLUMN previous_secrets bytea[] NOT NULL DEFAULT '{}',
    ADD COLUMN previous_secrets_expire_at timestamptz[] NOT NULL DEFAULT '{}';
