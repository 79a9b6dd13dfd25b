-- no-transaction
-- Dead deliveries are counted for metrics every few seconds and listed by the
-- dead-letter tools: a small partial index keeps both off a scan of every delivery.
-- Built concurrently, so an installation with many deliveries keeps writing.
CREATE INDEX CONCURRENTLY IF NOT EXISTS deliveries_dead_idx ON deliveries (created_at) WHERE status = 'dead';
