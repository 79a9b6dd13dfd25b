-- The first characters of each key, so operators can tell keys apart without the
-- key itself (only its hash is stored). Keys created before this show no hint.
ALTER TABLE api_keys ADD COLUMN hint text NOT NULL DEFAULT '';
