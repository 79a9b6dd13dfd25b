-- Master keys with ids. One check value per key id, encrypted by that key: a
-- process started with another key under a known id refuses to start. Key
-- rotations (re-encrypting every endpoint secret under the current key) are
-- durable jobs, resumed from `cursor` when interrupted; one runs at a time.
CREATE TABLE master_key_checks (
    key_id       text PRIMARY KEY,
    check_value  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE key_rotations (
    id           uuid PRIMARY KEY,
    -- The key every secret is re-encrypted under (the current one when it started).
    key_id       text NOT NULL,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    -- The last endpoint (by id) looked at; NULL before the first.
    cursor       uuid,
    total        bigint NOT NULL,
    done_count   bigint NOT NULL DEFAULT 0,
    rewritten    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE UNIQUE INDEX key_rotations_one_running ON key_rotations ((true)) WHERE status = 'running';
