-- Console links are single-use: opening one records its id until it would have
-- expired anyway, so a forwarded or leaked link cannot open a second session.
CREATE TABLE console_link_uses (
    id          uuid PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
