-- The endpoint's response headers on each attempt (capped by the sender), shown
-- beside the response status and body.
ALTER TABLE attempts ADD COLUMN response_headers jsonb;
