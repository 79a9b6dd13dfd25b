-- Request options: custom headers, authentication and TLS towards the receiver.
-- The shown parts are plain JSON; every secret value is in request_secrets,
-- encrypted like signing secrets. request_rev changes with every change of
-- them, so dispatchers reload an endpoint's options only when they changed.
ALTER TABLE endpoints
    ADD COLUMN headers jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN auth jsonb,
    ADD COLUMN tls jsonb,
    ADD COLUMN request_secrets bytea,
    ADD COLUMN request_rev integer NOT NULL DEFAULT 0;
