//! Walking the chain: links, hashes, key epochs and MACs, the same for the
//! store's records and for the records of a signed export.

use ring::digest::{SHA256, digest};
use serde_json::Value;

use super::super::StoreError;
use super::checkpoint::{Checkpoint, CheckpointSummary};
use super::mac::Installed;
use super::{Break, ChainReport, GENESIS, KEY_EVENT, MacCoverage};

/// One record as stored: every column as text.
pub(super) struct Link<'a> {
    pub id: i64,
    pub at: &'a str,
    pub event: &'a str,
    pub subject: Option<&'a str>,
    pub decision: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub detail: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
    pub key_id: Option<&'a str>,
    pub mac: Option<&'a str>,
}

impl Link<'_> {
    /// SHA-256 over the previous hash and a JSON array of the stored column
    /// texts: unambiguous and exactly reproducible from the database,
    /// whatever the detail's key order.
    pub fn computed_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.id,
            self.at,
            self.event,
            self.subject,
            self.decision,
            self.reason,
            self.detail
        ])
        .to_string();
        let mut buf = Vec::with_capacity(self.prev_hash.len() + canonical.len());
        buf.extend_from_slice(self.prev_hash.as_bytes());
        buf.extend_from_slice(canonical.as_bytes());
        hex::encode(digest(&SHA256, &buf))
    }

    /// Whether this record declares `key` as the key of the records from
    /// here on, following `previous` (`None`: unkeyed records, or none).
    fn declares(&self, key: &str, previous: Option<&str>) -> bool {
        if self.event != KEY_EVENT {
            return false;
        }
        serde_json::from_str::<Value>(self.detail).is_ok_and(|d| {
            d["key_id"].as_str() == Some(key) && d["previous_key_id"].as_str() == previous
        })
    }
}

/// The chain walked so far, from record 1.
pub(super) struct Walk<'k> {
    key: Option<&'k Installed<'k>>,
    prev: String,
    prev_id: Option<i64>,
    pub records: usize,
    /// The key of the newest record so far, and the record that declared it.
    epoch: Option<(String, i64)>,
    ours_seen: bool,
    pub macs: MacCoverage,
    pub broken: Option<Break>,
    /// The retention checkpoint the walk started from.
    checkpoint: Option<CheckpointSummary>,
}

impl<'k> Walk<'k> {
    /// With `key`, MACs under it are checked; without, hashes and links only.
    pub fn new(key: Option<&'k Installed<'k>>) -> Self {
        Self {
            key,
            prev: GENESIS.to_owned(),
            prev_id: None,
            records: 0,
            epoch: None,
            ours_seen: false,
            macs: MacCoverage {
                key_id: key.map(|k| k.key_id.clone()),
                ..MacCoverage::default()
            },
            broken: None,
            checkpoint: None,
        }
    }

    /// From a retention checkpoint (already checked): the next record must
    /// follow the newest pruned one, in its key epoch.
    pub fn resume(key: Option<&'k Installed<'k>>, from: &Checkpoint) -> Self {
        let mut walk = Self::new(key);
        walk.prev.clone_from(&from.hash);
        walk.prev_id = Some(from.record);
        walk.epoch = from.key_id.clone().map(|k| (k, from.record + 1));
        walk.ours_seen = key.is_some_and(|k| from.key_id.as_deref() == Some(k.key_id.as_str()));
        walk.checkpoint = Some(from.summary());
        walk
    }

    /// Broken before the first record (a checkpoint that does not verify).
    pub fn refused(key: Option<&'k Installed<'k>>, broken: Break) -> Self {
        let mut walk = Self::new(key);
        walk.broken = Some(broken);
        walk
    }

    /// The newest record's id and hash (GENESIS before any).
    pub fn head(&self) -> (Option<i64>, &str) {
        (self.prev_id, &self.prev)
    }

    /// The key of the newest record.
    pub fn newest_key(&self) -> Option<&str> {
        self.epoch.as_ref().map(|(k, _)| k.as_str())
    }

    /// Checks the next record; after the first break, does nothing.
    pub fn step(&mut self, link: &Link<'_>) -> Result<(), StoreError> {
        if self.broken.is_none() {
            self.records += 1;
            self.broken = self.check(link)?;
            self.prev = link.hash.to_owned();
            self.prev_id = Some(link.id);
        }
        Ok(())
    }

    fn check(&mut self, link: &Link<'_>) -> Result<Option<Break>, StoreError> {
        let record = link.id;
        if link.prev_hash != self.prev || record != self.prev_id.map_or(1, |p| p + 1) {
            return Ok(Some(Break::BrokenLink {
                record,
                previous: self.prev_id,
            }));
        }
        if link.computed_hash() != link.hash {
            return Ok(Some(Break::HashMismatch { record }));
        }
        let Some(key_id) = link.key_id else {
            if self.epoch.is_some() {
                return Ok(Some(Break::Unkeyed { record }));
            }
            self.macs.unkeyed += 1;
            return Ok(None);
        };
        let ours = self.key.filter(|k| k.key_id == key_id);
        if self.newest_key() != Some(key_id) {
            // A new key: declared by its first record (or record 1), and
            // never after this store's own key.
            if self.ours_seen {
                return Ok(Some(Break::ForeignKey { record }));
            }
            if record != 1 && !link.declares(key_id, self.newest_key()) {
                return Ok(Some(Break::UndeclaredKey { record }));
            }
            self.epoch = Some((key_id.to_owned(), record));
        }
        match ours {
            Some(key) => {
                self.ours_seen = true;
                if !key.record_ok(link.hash, link.mac)? {
                    return Ok(Some(Break::MacMismatch { record }));
                }
                self.macs.checked += 1;
            }
            None => self.macs.earlier_key += 1,
        }
        Ok(None)
    }

    /// After the last record: the head must name it and, when the records
    /// are keyed, carry their key and (checked when it is this store's) a
    /// valid MAC. `head` is `(record, hash, key id, mac)`.
    pub fn finish(
        &mut self,
        head: Option<(i64, &str, Option<&str>, Option<&str>)>,
    ) -> Result<(), StoreError> {
        if self.broken.is_some() {
            return Ok(());
        }
        let last_record = self.prev_id;
        let Some((head_record, hash, key_id, mac)) = head else {
            if last_record.is_some() {
                self.broken = Some(Break::HeadMismatch {
                    head_record: 0,
                    last_record,
                });
            }
            return Ok(());
        };
        if Some(head_record) != last_record || hash != self.prev {
            self.broken = Some(Break::HeadMismatch {
                head_record,
                last_record,
            });
            return Ok(());
        }
        let forged = Some(Break::HeadForged { head_record });
        match (&self.epoch, self.key) {
            (None, _) if key_id.is_some() => self.broken = forged,
            (None, _) => {}
            (Some((newest, _)), _) if key_id != Some(newest.as_str()) => self.broken = forged,
            (Some((newest, _)), Some(key)) if *newest == key.key_id => {
                if key.head_ok(head_record, hash, mac)? {
                    self.macs.head_checked = true;
                } else {
                    self.broken = forged;
                }
            }
            // The newest records are under a key this store does not hold.
            (Some((_, from)), Some(_)) => {
                self.broken = Some(Break::ForeignKey { record: *from });
            }
            (Some(_), None) => {}
        }
        Ok(())
    }

    pub fn into_report(self) -> ChainReport {
        ChainReport {
            records: self.records,
            head: self.prev,
            broken: self.broken,
            macs: self.macs,
            checkpoint: self.checkpoint,
        }
    }
}
