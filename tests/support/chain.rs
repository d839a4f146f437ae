//! An unlocked store with audit records, and what an attacker with write
//! access to its database does to the chain (the audit chain and
//! retention tests).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use edgeid::store::audit::{self, Event};
use edgeid::store::keys::{self, KekSource};
use edgeid::store::templates::{self, NewTemplate};
use edgeid::store::{Kek, KeyRing, Store};
use ring::digest::{SHA256, digest};

pub struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub dir: std::path::PathBuf,
    pub store: Store,
    pub kek: Kek,
    pub ring: KeyRing,
}

pub fn kek(dir: &Path, name: &str, byte: u8) -> Kek {
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).expect("kek");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Kek::read(&path, KekSource::File(path.clone()), true).expect("kek")
}

pub fn rotate_event() -> Event<'static> {
    Event::KeysRotate {
        new_dek: false,
        templates_resealed: 0,
    }
}

/// Keys and `records` audit records in all.
pub fn fixture(records: i64) -> Fixture {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_owned();
    let kek = kek(&dir, "kek", 7);
    let mut store = Store::create(&dir.join("state")).expect("create");
    let ring = keys::init(&mut store, &kek, "door-1", false).expect("init");
    while newest(&store) < records {
        audit::append(&mut store, &rotate_event()).expect("append");
    }
    Fixture {
        _tmp: tmp,
        dir,
        store,
        kek,
        ring,
    }
}

pub fn newest(store: &Store) -> i64 {
    store
        .conn()
        .query_row("SELECT COALESCE(MAX(id), 0) FROM audit", [], |r| r.get(0))
        .expect("newest")
}

/// A second connection, as an attacker with write access would have.
pub fn attacker(f: &Fixture) -> rusqlite::Connection {
    rusqlite::Connection::open(f.store.path()).expect("open db")
}

pub fn first_break(store: &Store) -> Option<i64> {
    audit::verify(store)
        .expect("verify")
        .broken
        .map(|b| b.first_broken_record())
}

/// Recomputes every hash from record `from` on, and the head's id and
/// hash, as an attacker who knows the (public) hashing rule would.
pub fn rechain(conn: &rusqlite::Connection, from: i64) {
    let mut prev: String = conn
        .query_row("SELECT prev_hash FROM audit WHERE id = ?1", [from], |r| {
            r.get(0)
        })
        .expect("prev");
    // Each record's id and the canonical JSON of its hashed columns.
    let rows: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT id, at, event, subject, decision, reason, detail FROM audit \
                 WHERE id >= ?1 ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([from], |r| {
            let id: i64 = r.get(0)?;
            let columns = serde_json::json!([
                id,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
            ]);
            Ok((id, columns.to_string()))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    for (id, canonical) in rows {
        let hash = hex::encode(digest(&SHA256, format!("{prev}{canonical}").as_bytes()));
        conn.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            (&prev, &hash, id),
        )
        .expect("rechain");
        conn.execute(
            "UPDATE audit_head SET record_id = ?1, hash = ?2",
            (id, &hash),
        )
        .expect("head");
        prev = hash;
    }
}

/// The first record `verify` names after an attacker ran `sql`.
pub fn break_after(f: &Fixture, sql: &str) -> Option<i64> {
    attacker(f).execute_batch(sql).expect("tamper");
    first_break(&f.store)
}

pub fn enrol(f: &mut Fixture, subject: &str, n: usize) -> Vec<i64> {
    let vectors: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..128).map(|j| ((i * 128 + j) as f32).sin()).collect())
        .collect();
    let new: Vec<NewTemplate<'_>> = vectors
        .iter()
        .map(|v| NewTemplate {
            modality: "face",
            model_id: "m1",
            model_sha256: "abc",
            vector: v,
            quality: serde_json::json!({}),
        })
        .collect();
    let event = Event::Enroll {
        subject,
        detail: serde_json::json!({"origin": "test"}),
    };
    templates::enroll(&mut f.store, &f.ring.dek, subject, &new, true, Some(&event)).expect("enrol")
}
