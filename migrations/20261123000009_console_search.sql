-- The console finds a tenant's events by idempotency key.
CREATE INDEX events_idempotency_idx ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
