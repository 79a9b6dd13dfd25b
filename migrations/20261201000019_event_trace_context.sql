-- The trace context (W3C traceparent) each event was accepted in, when spans are
-- exported: routing and every attempt of the event join that trace.
ALTER TABLE events ADD COLUMN traceparent text;
