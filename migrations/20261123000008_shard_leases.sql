-- Dispatchers share the delivery shards through leases: each live dispatcher
-- heartbeats, takes a fair share of free or expired shards and lets go of any
-- above its share, so a dispatcher that joins gets work and one that dies hands
-- its shards on when its leases expire.
CREATE TABLE dispatchers (
    id            uuid PRIMARY KEY,
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shard_leases (
    shard       integer PRIMARY KEY,
    holder      uuid,
    expires_at  timestamptz
);
