//! Writing through the store: [`Store::conn_mut`](super::Store::conn_mut)
//! hands out a [`Writer`], whose transactions move the rollback anchor
//! forward when they commit (see `anchor`). Both dereference to the
//! rusqlite connection and transaction, so code that writes SQL reads as
//! usual; only `commit` does more.

use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StoreError;
use super::anchor::{Anchoring, Position};

/// The store's connection, for writes.
pub struct Writer<'a> {
    conn: &'a mut Connection,
    anchor: &'a mut Option<Anchoring>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(conn: &'a mut Connection, anchor: &'a mut Option<Anchoring>) -> Self {
        Self { conn, anchor }
    }

    pub fn transaction_with_behavior(
        self,
        behavior: TransactionBehavior,
    ) -> rusqlite::Result<StoreTx<'a>> {
        Ok(StoreTx {
            tx: self.conn.transaction_with_behavior(behavior)?,
            anchor: self.anchor,
        })
    }

    pub fn transaction(self) -> rusqlite::Result<StoreTx<'a>> {
        self.transaction_with_behavior(TransactionBehavior::Deferred)
    }
}

impl Deref for Writer<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl DerefMut for Writer<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
    }
}

/// A transaction on the store; rolled back when dropped uncommitted.
pub struct StoreTx<'a> {
    tx: Transaction<'a>,
    anchor: &'a mut Option<Anchoring>,
}

impl<'a> Deref for StoreTx<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Transaction<'a> {
        &self.tx
    }
}

impl StoreTx<'_> {
    /// Commits; then, when the store's keys are unlocked, writes the
    /// position just committed to the rollback anchor. An anchor that
    /// cannot be written is an error although the commit stands: the
    /// caller must not carry on as if the store were protected.
    pub fn commit(self) -> Result<(), StoreError> {
        let StoreTx { tx, anchor } = self;
        let here = match anchor {
            Some(anchoring) => Some((Position::read(&tx)?, anchoring.wants_bump(&tx)?)),
            None => None,
        };
        tx.commit()?;
        if let (Some(anchoring), Some((here, bump))) = (anchor.as_mut(), here) {
            anchoring.advance(here, bump)?;
        }
        Ok(())
    }
}
