//! The MQTT sink's view of the store's outbound verdict queue
//! (`store::queue`): every verdict bound for the broker is written there
//! first and removed only when the broker acknowledges it (PUBACK), so a
//! broker outage or a crash loses nothing and order is kept.

use crate::store::{Store, StoreError, queue};
use crate::verdict::jws::decode_unverified;

pub struct Outbox {
    store: Store,
    capacity: usize,
    /// Verdicts that expired before they could be delivered.
    pub expired: u64,
    /// Verdicts dropped because the queue was full.
    pub overflowed: u64,
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
