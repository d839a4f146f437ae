//! An unlocked store's anchor, moved forward after every commit, and the
//! hardware counter it bumps (see `counter`).

use std::path::PathBuf;

use rusqlite::Connection;

use super::counter::{CounterRef, Tpm};
use super::file::{AnchorKey, Found, inspect, locked, write};
use super::{AnchorError, Position};
use crate::store::files::Owner;
use crate::store::{Store, StoreError};

/// A hardware counter in use: the value the anchor holds, and when to bump.
struct Armed {
    tpm: Tpm,
    value: u64,
    every: u32,
    commits_since_bump: u32,
}

impl Armed {
    fn reference(&self) -> CounterRef {
        CounterRef::tpm(self.tpm.index(), self.value)
    }
}

/// An unlocked store's anchor, moved forward after each commit.
pub struct Anchoring {
    dir: PathBuf,
    owner: Owner,
    device_id: String,
    key: AnchorKey,
    /// The position last written or found written.
    last: Option<Position>,
    counter: Option<Armed>,
}

impl Anchoring {
    pub fn new(store: &Store, device_id: &str, key: AnchorKey, last: Option<Position>) -> Self {
        Self {
            dir: store.dir().to_owned(),
            owner: store.owner(),
            device_id: device_id.to_owned(),
            key,
            last,
            counter: None,
        }
    }

    /// Arms the hardware counter, whose value the anchor now holds.
    pub fn with_counter(mut self, tpm: Tpm, value: u64, every: u32) -> Self {
        self.counter = Some(Armed {
            tpm,
            value,
            every,
            commits_since_bump: 0,
        });
        self
    }

    /// After a key rotation: the same anchor (and counter) under a new key.
    pub fn rekeyed(self, key: AnchorKey, last: Position) -> Self {
        Self {
            key,
            last: Some(last),
            ..self
        }
    }

    /// The counter's value the anchor holds, when one is armed.
    pub fn counter(&self) -> Option<CounterRef> {
        self.counter.as_ref().map(Armed::reference)
    }

    /// Inside the transaction about to commit: whether this commit bumps the
    /// hardware counter (see [`counter`]: an audit record other than a
    /// verdict since the last anchor, or `bump_every` commits).
    pub fn wants_bump(&self, tx: &Connection) -> Result<bool, StoreError> {
        let Some(armed) = &self.counter else {
            return Ok(false);
        };
        if armed.commits_since_bump + 1 >= armed.every {
            return Ok(true);
        }
        let after = self.last.as_ref().map_or(0, |p| p.audit_record);
        Ok(tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE id > ?1 AND event NOT IN ('verify', 'identify'))",
            [after],
            |r| r.get(0),
        )?)
    }

    /// After a commit at `here`: writes the anchor unless it already holds
    /// `here` or a later position (another process may have written one);
    /// with `bump`, writes it with the counter's next value and then
    /// increments the counter.
    pub fn advance(&mut self, here: Position, bump: bool) -> Result<(), AnchorError> {
        if self.last.as_ref() == Some(&here) && !bump {
            return Ok(());
        }
        let _lock = locked(&self.dir)?;
        let current = inspect(&self.dir, &self.device_id, &self.key)?;
        if let Some(armed) = self.counter.as_mut() {
            // Another process (a verb beside the daemon) may have bumped the
            // counter; the anchor file holds the newest value written.
            if let Found::Valid {
                counter: Some(c), ..
            } = &current
                && c.index() == Some(armed.tpm.index())
            {
                armed.value = armed.value.max(c.value);
            }
            armed.commits_since_bump += 1;
            if bump {
                let next = CounterRef::tpm(armed.tpm.index(), armed.value + 1);
                write(
                    &self.dir,
                    self.owner,
                    &self.device_id,
                    (&here, Some(&next)),
                    &[&self.key],
                )?;
                armed.value = armed.tpm.step_from(armed.value)?;
                armed.commits_since_bump = 0;
                self.last = Some(here);
                return Ok(());
            }
        }
        let counter = self.counter();
        let keep = matches!(&current, Found::Valid { position, counter: c } if position.reaches(&here) && *c == counter);
        if !keep {
            write(
                &self.dir,
                self.owner,
                &self.device_id,
                (&here, counter.as_ref()),
                &[&self.key],
            )?;
        }
        self.last = Some(here);
        Ok(())
    }
}
