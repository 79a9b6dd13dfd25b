-- The spine: producers' API keys, tenants, their endpoints, events, one delivery per
-- (event, subscribed endpoint), and every attempt at sending it.

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    key_hash    bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    uid         text CONSTRAINT tenants_uid_key UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_created_idx ON tenants (created_at DESC, id DESC);

CREATE TABLE endpoints (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    url                text NOT NULL,
    description        text NOT NULL DEFAULT '',
    -- NULL: every event type.
    event_types        text[],
    -- AES-256-GCM of the raw key bytes: nonce || ciphertext.
    secret_ciphertext  bytea NOT NULL,
    disabled           boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX endpoints_tenant_idx ON endpoints (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE events (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    event_type       text NOT NULL,
    -- The JSON exactly as the producer sent it: it is the body every endpoint receives.
    payload          text NOT NULL,
    idempotency_key  text,
    -- When the gateway accepted it (the broker confirmed it).
    created_at       timestamptz NOT NULL,
    routed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant_idx ON events (tenant_id, created_at DESC, id DESC);

CREATE TABLE deliveries (
    id                    uuid PRIMARY KEY,
    event_id              uuid NOT NULL REFERENCES events (id),
    endpoint_id           uuid NOT NULL REFERENCES endpoints (id),
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts              integer NOT NULL DEFAULT 0,
    -- The retry engine's seam: when the next attempt is due (NULL: none scheduled).
    next_attempt_at       timestamptz,
    last_attempt_at       timestamptz,
    last_response_status  integer,
    last_error            text,
    delivered_at          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_event_endpoint_key UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, created_at DESC);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE attempts (
    id               uuid PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES deliveries (id),
    attempt          integer NOT NULL,
    request_headers  jsonb NOT NULL,
    response_status  integer,
    response_body    text,
    duration_ms      integer NOT NULL,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_delivery_idx ON attempts (delivery_id, attempt);
