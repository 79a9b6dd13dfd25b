-- The x-request-id of the ingest request that accepted each event, so a producer's
-- request can be followed to its events (and from there to every attempt).
ALTER TABLE events ADD COLUMN request_id text;
