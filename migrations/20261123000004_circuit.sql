-- The endpoint's circuit breaker as last reported by the dispatcher that owns it.
ALTER TABLE endpoints
    ADD COLUMN circuit_state text NOT NULL DEFAULT 'closed' CHECK (circuit_state IN ('closed', 'open', 'half_open')),
    ADD COLUMN circuit_opened_at timestamptz,
    ADD COLUMN circuit_next_probe_at timestamptz;
