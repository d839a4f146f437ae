//! The MQTT sink's view of the store's outbound verdict queue
//! (`store::queue`): every verdict bound for the broker is written there
//! first and removed only when the broker acknowledges it (PUBACK), so a
//! broker outage or a crash loses nothing and order is kept.
//!
//! It also checkpoints the database's write-ahead log now and then while
//! nothing is in flight (see [`Outbox::checkpoint_if_due`]).

use std::time::Instant;

use crate::store::{Store, StoreError, queue};
use crate::verdict::jws::decode_unverified;

/// Verdicts delivered between two write-ahead-log checkpoints. Each verdict
/// adds about five WAL frames (lockout, sequence, audit, queue in and out),
/// so the log stays well below SQLite's automatic checkpoint at 1000 frames.
const CHECKPOINT_EVERY: u32 = 64;

pub struct Outbox {
    store: Store,
    capacity: usize,
    /// Verdicts that expired before they could be delivered.
    pub expired: u64,
    /// Verdicts dropped because the queue was full.
    pub overflowed: u64,
    delivered_since_checkpoint: u32,
}

/// One queued verdict ready to publish.
pub struct Pending {
    pub id: i64,
    pub verdict: String,
    /// Seconds of validity left (MQTT 5 message expiry).
    pub remaining_secs: u32,
}

impl Outbox {
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            store,
            capacity,
            expired: 0,
            overflowed: 0,
            delivered_since_checkpoint: 0,
        }
    }

    /// Writes a verdict to disk; returns its queue id.
    pub fn push(&mut self, verdict: &str) -> Result<i64, StoreError> {
        let dropped = queue::push(&mut self.store, verdict, self.capacity)?;
        self.overflowed += dropped as u64;
        // The queue's insert is this connection's last; DELETE does not change it.
        Ok(self.store.conn().last_insert_rowid())
    }

    pub fn acknowledged(&mut self, id: i64) -> Result<(), StoreError> {
        queue::remove(&self.store, id)?;
        self.delivered_since_checkpoint = self.delivered_since_checkpoint.saturating_add(1);
        Ok(())
    }

    /// Call when nothing is in flight. Every [`CHECKPOINT_EVERY`] delivered
    /// verdicts, copies the write-ahead log into the database (PASSIVE:
    /// waits for no reader or writer). Otherwise the commit that takes the
    /// log past 1000 frames runs SQLite's automatic checkpoint, with its
    /// fsync of the database file, and that commit is as likely as not the
    /// engine's, in the middle of a verdict.
    pub fn checkpoint_if_due(&mut self) -> Result<(), StoreError> {
        if self.delivered_since_checkpoint < CHECKPOINT_EVERY {
            return Ok(());
        }
        self.delivered_since_checkpoint = 0;
        let started = Instant::now();
        let (busy, frames, copied): (i64, i64, i64) =
            self.store
                .conn()
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        tracing::debug!(
            busy,
            frames,
            copied,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "WAL checkpoint between verdicts"
        );
        Ok(())
    }

    pub fn len(&self) -> Result<usize, StoreError> {
        queue::len(&self.store)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Up to `limit` queued verdicts after `after` (a queue id), oldest
    /// first; expired ones are removed and counted on the way.
    pub fn after(
        &mut self,
        after: i64,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Pending>, StoreError> {
        let rows: Vec<(i64, String)> = {
            let mut stmt = self.store.conn().prepare_cached(
                "SELECT id, verdict FROM verdict_queue WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            stmt.query_map(rusqlite::params![after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, verdict) in rows {
            // Our own signed output; an undecodable entry is dropped, not retried forever.
            let exp = decode_unverified(&verdict).map(|(_, c)| c.exp).unwrap_or(0);
            if exp <= now {
                tracing::warn!(
                    queue_id = id,
                    "a queued verdict expired before it could be delivered; dropped"
                );
                self.expired += 1;
                queue::remove(&self.store, id)?;
                continue;
            }
            let remaining_secs = u32::try_from(exp - now).unwrap_or(u32::MAX);
            out.push(Pending {
                id,
                verdict,
                remaining_secs,
            });
        }
        Ok(out)
    }
}
