-- Per-endpoint protection: a rate limit (with burst), a cap on requests in flight,
-- and a request timeout. NULL: no limit / the installation's default timeout.
ALTER TABLE endpoints
    ADD COLUMN rate_limit_per_second integer CHECK (rate_limit_per_second > 0),
    ADD COLUMN rate_limit_burst integer CHECK (rate_limit_burst > 0),
    ADD COLUMN max_in_flight integer CHECK (max_in_flight > 0),
    ADD COLUMN timeout_ms integer CHECK (timeout_ms > 0);
