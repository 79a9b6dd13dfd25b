-- Delivery controls: pausing an endpoint, strict ordering, payload filters and
-- channels, cancelling by hand, and replays sent outside an endpoint's order.
--
-- An open delivery (pending or failed) without a due time is held: its endpoint is
-- paused, or it waits behind the head of an ordered endpoint. Nothing sends a held
-- delivery; resuming an endpoint, or its head finishing, gives held ones a due time.

ALTER TABLE endpoints
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD COLUMN paused_at timestamptz,
    -- Why hookrelay paused it (an ordered head died with on_dead = 'stop'); NULL when paused by hand.
    ADD COLUMN paused_reason text,
    ADD COLUMN ordering text NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'strict')),
    ADD COLUMN on_dead text NOT NULL DEFAULT 'release' CHECK (on_dead IN ('release', 'stop')),
    ADD COLUMN filter jsonb,
    ADD COLUMN channels text[];

ALTER TABLE events ADD COLUMN channels text[];

-- The acceptance time of the delivery's event, set on the deliveries of ordered
-- endpoints only: with the event id it is the order they are sent in.
ALTER TABLE deliveries ADD COLUMN accepted_at timestamptz;
-- Who cancelled it by hand (the actor's name), when someone did.
ALTER TABLE deliveries ADD COLUMN cancelled_by text;

-- Sent outside its endpoint's order (a replay by hand of an ordered endpoint's delivery).
ALTER TABLE attempts ADD COLUMN out_of_band boolean NOT NULL DEFAULT false;

-- Ordered endpoints' open deliveries, in their order: the head and those behind it.
-- A head cancelled while in flight keeps its claim (and its place here) until its
-- attempt ends, so the next one does not go out beside it.
CREATE INDEX deliveries_ordered_idx ON deliveries (endpoint_id, accepted_at, event_id)
    WHERE accepted_at IS NOT NULL AND (status IN ('pending', 'failed') OR claimed_until IS NOT NULL);
-- Held deliveries by endpoint, oldest first: a paused backlog and what resume sends.
CREATE INDEX deliveries_held_idx ON deliveries (endpoint_id, id)
    WHERE next_attempt_at IS NULL AND status IN ('pending', 'failed');

-- A cancel job walks an endpoint's backlog like recover does.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('recover', 'dead_replay', 'cancel_backlog'));
ALTER TABLE jobs ADD COLUMN actor text;

-- hookrelay's own changes (an ordered endpoint stopped when its head died) are audited too.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check
    CHECK (actor_kind IN ('api_key', 'admin', 'operator', 'console', 'system'));
