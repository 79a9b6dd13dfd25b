-- Secret rotation: the secret rotated out keeps signing (beside the new one) until
-- its grace period ends, so subscribers can switch without dropping a message.
ALTER TABLE endpoints
    ADD COLUMN previous_secret_ciphertext bytea,
    ADD COLUMN previous_secret_expires_at timestamptz;
