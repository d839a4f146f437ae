//! The audit chain's MAC key and where it lives while the store is
//! unlocked.
//!
//! The key is HMAC-SHA256 under HKDF-SHA256(salt `edgeid audit chain v1`,
//! input the data key (DEK), info `audit-mac` ‖ device id). Unlocking the
//! keys installs it on the store's SQLite connection as SQL functions
//! ([`install`]), so every append on that connection is keyed, including
//! those made inside another module's transaction (a verdict, an
//! enrolment), and a connection that was never unlocked has no key and
//! cannot append. The functions are `SQLITE_DIRECTONLY`: a trigger or view
//! planted in the database cannot call them.
//!
//! Every MAC input starts with a label, so a record's MAC is never a valid
//! head MAC or key id:
//! - a record: `edgeid-audit-v1 record\n` ‖ its hash (which chains every
//!   record before it);
//! - the head: `edgeid-audit-v1 head\n` ‖ record id ‖ `\n` ‖ its hash;
//! - the key id (public, names the key in each record): the first 16 hex
//!   digits of the MAC of `edgeid-audit-v1 key-id`.

use ring::{hkdf, hmac};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use super::super::StoreError;
use super::super::seal::DataKey;
use super::AuditError;

const HKDF_SALT: &[u8] = b"edgeid audit chain v1";
const HKDF_INFO: &[u8] = b"audit-mac";
const RECORD_LABEL: &str = "edgeid-audit-v1 record\n";
const HEAD_LABEL: &str = "edgeid-audit-v1 head\n";
const KEY_ID_LABEL: &[u8] = b"edgeid-audit-v1 key-id";

/// hex HMAC of its one argument.
const MAC_FN: &str = "edgeid_audit_mac";
/// 1 when its second argument is the hex HMAC of its first (constant time).
const CHECK_FN: &str = "edgeid_audit_mac_ok";
/// The installed key's id.
const KEY_ID_FN: &str = "edgeid_audit_key_id";

fn derive(dek: &DataKey, device_id: &str) -> Result<hmac::Key, AuditError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(dek.bytes());
    let info = [HKDF_INFO, device_id.as_bytes()];
    let okm = prk
        .expand(&info, hmac::HMAC_SHA256)
        .map_err(|_| AuditError::KeyDerivation)?;
    Ok(hmac::Key::from(okm))
}

/// Installs the audit key derived from `dek` on `conn` (replacing one
/// installed before, as after a DEK rotation).
pub fn install(conn: &Connection, dek: &DataKey, device_id: &str) -> Result<(), StoreError> {
    let key = derive(dek, device_id)?;
    let key_id = hex::encode(hmac::sign(&key, KEY_ID_LABEL).as_ref())[..16].to_owned();
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_DIRECTONLY;
    let signing = key.clone();
    conn.create_scalar_function(MAC_FN, 1, flags, move |ctx| {
        let message: String = ctx.get(0)?;
        Ok(hex::encode(
            hmac::sign(&signing, message.as_bytes()).as_ref(),
        ))
    })?;
    conn.create_scalar_function(CHECK_FN, 2, flags, move |ctx| {
        let message: String = ctx.get(0)?;
        let mac: Option<String> = ctx.get(1)?;
        let tag = mac.and_then(|m| hex::decode(m).ok()).unwrap_or_default();
        Ok(hmac::verify(&key, message.as_bytes(), &tag).is_ok())
    })?;
    conn.create_scalar_function(KEY_ID_FN, 0, flags, move |_| Ok(key_id.clone()))?;
    Ok(())
}

/// The audit key installed on a connection.
pub struct Installed<'c> {
    conn: &'c Connection,
    /// Its public id, stored in each record it MACs.
    pub key_id: String,
}

impl<'c> Installed<'c> {
    /// The key installed on `conn`; `None` when the store was not unlocked.
    pub fn find(conn: &'c Connection) -> Result<Option<Self>, StoreError> {
        match conn.query_row(&format!("SELECT {KEY_ID_FN}()"), [], |r| r.get(0)) {
            Ok(key_id) => Ok(Some(Self { conn, key_id })),
            Err(e) if is_missing_function(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn mac(&self, message: &str) -> Result<String, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {MAC_FN}(?1)"), [message], |r| r.get(0))?)
    }

    fn check(&self, message: &str, mac: Option<&str>) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {CHECK_FN}(?1, ?2)"), (message, mac), |r| {
                r.get(0)
            })?)
    }

    pub fn record_mac(&self, hash: &str) -> Result<String, StoreError> {
        self.mac(&format!("{RECORD_LABEL}{hash}"))
    }

    pub fn record_ok(&self, hash: &str, mac: Option<&str>) -> Result<bool, StoreError> {
        self.check(&format!("{RECORD_LABEL}{hash}"), mac)
    }

    pub fn head_mac(&self, record: i64, hash: &str) -> Result<String, StoreError> {
        self.mac(&format!("{HEAD_LABEL}{record}\n{hash}"))
    }

    pub fn head_ok(&self, record: i64, hash: &str, mac: Option<&str>) -> Result<bool, StoreError> {
        self.check(&format!("{HEAD_LABEL}{record}\n{hash}"), mac)
    }
}

fn is_missing_function(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(_, Some(msg)) | rusqlite::Error::SqlInputError { msg, .. }
        if msg.starts_with("no such function"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_dek_and_device_and_macs_are_domain_separated() {
        let conn = Connection::open_in_memory().expect("db");
        assert!(Installed::find(&conn).expect("find").is_none());
        let dek = DataKey::from_bytes(&[1; 32]);
        install(&conn, &dek, "door-1").expect("install");
        let key = Installed::find(&conn).expect("find").expect("installed");
        let first = key.key_id.clone();
        let mac = key.record_mac("ab").expect("mac");
        assert!(key.record_ok("ab", Some(&mac)).expect("check"));
        assert!(!key.record_ok("ac", Some(&mac)).expect("check"));
        assert!(!key.record_ok("ab", None).expect("check"));
        assert!(!key.head_ok(1, "ab", Some(&mac)).expect("check"));
        let head = key.head_mac(1, "ab").expect("head");
        assert!(key.head_ok(1, "ab", Some(&head)).expect("check"));
        assert!(!key.head_ok(2, "ab", Some(&head)).expect("check"));
        for (dek, device) in [([2; 32], "door-1"), ([1; 32], "door-2")] {
            install(&conn, &DataKey::from_bytes(&dek), device).expect("install");
            let other = Installed::find(&conn).expect("find").expect("installed");
            assert_ne!(other.key_id, first);
            assert!(!other.record_ok("ab", Some(&mac)).expect("check"));
        }
    }

    #[test]
    fn a_trigger_cannot_call_the_key() {
        let conn = Connection::open_in_memory().expect("db");
        install(&conn, &DataKey::from_bytes(&[1; 32]), "d").expect("install");
        conn.execute_batch(
            "CREATE TABLE t (x TEXT); CREATE TABLE leak (m TEXT); \
             CREATE TRIGGER oracle AFTER INSERT ON t BEGIN \
             INSERT INTO leak VALUES (edgeid_audit_mac(NEW.x)); END;",
        )
        .expect("schema");
        assert!(conn.execute("INSERT INTO t VALUES ('forged')", []).is_err());
    }
}
