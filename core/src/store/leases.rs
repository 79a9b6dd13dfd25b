//! Shard leases: how dispatchers share the delivery shards fairly. Each heartbeat
//! renews a dispatcher's leases, gives back the shards it has drained and takes
//! free or expired shards up to its fair share, all in one transaction.

use std::time::Duration;

use uuid::Uuid;

use super::{Result, Store};

/// What a heartbeat leaves a dispatcher with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leases {
    /// Shards it holds, in order (including any it is still draining).
    pub held: Vec<u16>,
    /// How many shards each live dispatcher should hold.
    pub fair: usize,
}

impl Store {
    /// One heartbeat of dispatcher `me` over `shards` shards; leases last `ttl`.
    /// First gives back `drained` (shards it stopped consuming and finished), then
    /// renews the rest and takes free or expired shards up to its fair share. It
    /// never gives back a shard by itself: the dispatcher drains one first, so two
    /// dispatchers never work a shard (and its endpoints' limits) at once.
    pub async fn heartbeat_leases(
        &self,
        me: Uuid,
        shards: u16,
        ttl: Duration,
        drained: &[u16],
    ) -> Result<Leases> {
        let ttl = ttl.as_secs_f64();
        let shards = i32::from(shards);
        let drained: Vec<i32> = drained.iter().map(|s| i32::from(*s)).collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO dispatchers (id, heartbeat_at) VALUES ($1, now())
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
        )
        .bind(me)
        .execute(&mut *tx)
        .await?;
        // Long-gone dispatchers leave no trace.
        sqlx::query(
            "DELETE FROM dispatchers WHERE heartbeat_at < now() - make_interval(secs => $1 * 10)",
        )
        .bind(ttl)
        .execute(&mut *tx)
        .await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dispatchers WHERE heartbeat_at > now() - make_interval(secs => $1)",
        )
        .bind(ttl)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO shard_leases (shard) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING",
        )
        .bind(shards)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE shard_leases SET holder = NULL, expires_at = NULL
             WHERE holder = $1 AND shard = ANY($2)",
        )
        .bind(me)
        .bind(&drained)
        .execute(&mut *tx)
        .await?;
        let mut held: Vec<i32> = sqlx::query_scalar(
            "UPDATE shard_leases SET expires_at = now() + make_interval(secs => $3)
             WHERE holder = $1 AND shard < $2 RETURNING shard",
        )
        .bind(me)
        .bind(shards)
        .bind(ttl)
        .fetch_all(&mut *tx)
        .await?;
        let live = live.max(1);
        let fair = usize::try_from((i64::from(shards) + live - 1) / live).unwrap_or(usize::MAX);
        if held.len() < fair {
            let taken: Vec<i32> = sqlx::query_scalar(
                "UPDATE shard_leases SET holder = $1, expires_at = now() + make_interval(secs => $3)
                 WHERE shard IN (
                     SELECT shard FROM shard_leases
                     WHERE shard < $2 AND (holder IS NULL OR expires_at < now())
                     ORDER BY shard LIMIT $4 FOR UPDATE SKIP LOCKED)
                 RETURNING shard",
            )
            .bind(me)
            .bind(shards)
            .bind(ttl)
            .bind((fair - held.len()) as i64)
            .fetch_all(&mut *tx)
            .await?;
            held.extend(taken);
        }
        tx.commit().await?;
        held.sort_unstable();
        Ok(Leases {
            held: held
                .into_iter()
                .filter_map(|s| u16::try_from(s).ok())
                .collect(),
            fair,
        })
    }

    /// Gives back every lease of `me` and leaves the fleet (graceful stop).
    pub async fn release_leases(&self, me: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE shard_leases SET holder = NULL, expires_at = NULL WHERE holder = $1")
            .bind(me)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM dispatchers WHERE id = $1")
            .bind(me)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Shards above `shards` that some dispatcher once used and none holds now:
    /// their queues may still hold deliveries to move.
    pub async fn orphaned_shards(&self, shards: u16) -> Result<Vec<u16>> {
        let found: Vec<i32> = sqlx::query_scalar(
            "SELECT shard FROM shard_leases
             WHERE shard >= $1 AND (holder IS NULL OR expires_at IS NULL OR expires_at < now())
             ORDER BY shard",
        )
        .bind(i32::from(shards))
        .fetch_all(&self.pool)
        .await?;
        Ok(found
            .into_iter()
            .filter_map(|s| u16::try_from(s).ok())
            .collect())
    }

    /// Forgets a shard whose queue is drained and deleted.
    pub async fn forget_shard(&self, shard: u16) -> Result<()> {
        sqlx::query(
            "DELETE FROM shard_leases WHERE shard = $1 AND (holder IS NULL OR expires_at IS NULL OR expires_at < now())",
        )
        .bind(i32::from(shard))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
