//! The key-encryption key and where it came from, the keys it opens, and
//! the store: schema, integrity, rollback anchor. Read-only throughout
//! (`store::health`): a check never migrates, tightens or re-anchors.

use std::path::Path;

use edgeid::config::Config;
use edgeid::store::health::{AnchorHealth, ReadOnlyStore};
use edgeid::store::keys::{CREDENTIAL_NAME, KeyError};
use edgeid::store::{Kek, StoreError};

use super::report::{Check, chain};
use crate::cli::GlobalArgs;

/// Where systemd looks for the `edgeid.kek` credential (`scripts/provision`
/// puts it in the first when `systemd-creds` exists, else in the second).
const CREDENTIAL_STORES: [&str; 2] = ["/etc/credstore.encrypted", "/etc/credstore"];

pub fn check(global: &GlobalArgs, config: &Config) -> Vec<Check> {
    let kek = Kek::locate(config.kek_file.as_deref());
    let store = match ReadOnlyStore::open(&global.state_dir) {
        Ok(s) => s,
        Err(e) => {
            let fix = match &e {
                StoreError::NotInitialised(_) => {
                    "run `edgeid keys init` as the service user (scripts/provision does it)"
                }
                _ => "run doctor as root or as the service user (the state directory is private)",
            };
            return vec![kek_only(kek), Check::fail("store", chain(&e), fix)];
        }
    };
    let mut checks = Vec::new();
    checks.push(match store.health() {
        Ok(h) if h.schema_version > h.schema_supported => Check::fail(
            "store",
            format!(
                "{}: schema v{}, newer than this edgeid (v{})",
                h.path.display(),
                h.schema_version,
                h.schema_supported
            ),
            "upgrade edgeid; the store was not modified",
        ),
        Ok(h) if !h.integrity_problems.is_empty() => Check::fail(
            "store",
            format!(
                "{}: SQLite integrity check: {}",
                h.path.display(),
                h.integrity_problems.join("; ")
            ),
            "restore the state directory from a backup (then `edgeid keys reanchor --i-restored-a-backup`)",
        )
        .with_detail(&h),
        Ok(h) if h.schema_version < h.schema_supported => Check::warn(
            "store",
            format!(
                "{}: schema v{} (this edgeid writes v{}), integrity ok",
                h.path.display(),
                h.schema_version,
                h.schema_supported
            ),
            "the daemon migrates it at its next start; back up the state directory first",
        )
        .with_detail(&h),
        Ok(h) => Check::ok(
            "store",
            format!(
                "{}: schema v{}, integrity ok, {} subject(s), {} audit record(s)",
                h.path.display(),
                h.schema_version,
                h.subjects,
                h.audit_records
            ),
        )
        .with_detail(&h),
        Err(e) => Check::fail(
            "store",
            chain(&e),
            "the database cannot be read: check the disk and the state directory",
        ),
    });
    let kek = match kek {
        Ok(k) => k,
        Err(e) => {
            checks.insert(0, kek_only(Err(e)));
            return checks;
        }
    };
    let ring = match store.unlock(&kek) {
        Ok(ring) => ring,
        Err(e) => {
            checks.insert(
                0,
                Check::fail(
                    "keys",
                    format!("the KEK from {} does not open the keys: {}", kek.source, chain(&e)),
                    "use the KEK this store was created with; if it is lost, `edgeid keys init --force` (templates are lost)",
                ),
            );
            return checks;
        }
    };
    checks.insert(
        0,
        Check::ok(
            "keys",
            format!(
                "device {}, kid {}, KEK from {}",
                ring.device_id, ring.kid, kek.source
            ),
        ),
    );
    checks.push(match store.anchor(&ring, &config.anchor) {
        Ok(AnchorHealth::Matches {
            anchor,
            database,
            counter,
            tpm_value,
        }) => Check::ok(
            "anchor",
            format!(
                "rollback anchor at seq {} / audit record {}; database at seq {} / record {}{}",
                anchor.seq,
                anchor.audit_record,
                database.seq,
                database.audit_record,
                match (counter, tpm_value) {
                    (Some(c), Some(v)) => format!("; TPM counter {} at {v} (anchor {})", c.nv_index, c.value),
                    _ => "; no hardware counter".to_owned(),
                }
            ),
        ),
        Ok(a @ AnchorHealth::NotYetAnchored { .. }) => Check::warn(
            "anchor",
            "no rollback anchor yet (store made by an older edgeid)",
            "start the daemon or run any key verb once: it anchors the store",
        )
        .with_detail(a),
        Ok(a @ AnchorHealth::Refused { problem, .. }) => Check::fail(
            "anchor",
            format!("the database does not match its rollback anchor ({problem}): the daemon will refuse to serve"),
            "put the newest database back; if the restore was deliberate, `edgeid keys reanchor --i-restored-a-backup`",
        )
        .with_detail(a),
        Err(e) => Check::fail("anchor", chain(&e), "check the state directory"),
    });
    checks
}

/// The KEK check when the store cannot be opened with it.
fn kek_only(kek: Result<Kek, KeyError>) -> Check {
    match kek {
        Ok(k) => Check::ok("keys", format!("KEK from {} (store not opened)", k.source)),
        Err(KeyError::NoKek) => match installed_credential() {
            Some(path) => {
                let load = if path.starts_with(CREDENTIAL_STORES[0]) {
                    "LoadCredentialEncrypted"
                } else {
                    "LoadCredential"
                };
                Check::warn(
                    "keys",
                    format!(
                        "the KEK is the systemd credential {}: only the service can read it, so the keys were not opened",
                        path.display()
                    ),
                    format!(
                        "to check them too: systemd-run --pipe --wait -p User=edgeid -p {load}=edgeid.kek:{} edgeid doctor",
                        path.display()
                    ),
                )
            }
            None => Check::fail(
                "keys",
                KeyError::NoKek.to_string(),
                "scripts/provision creates it (a systemd credential, or a 0600 file)",
            ),
        },
        Err(e) => Check::fail("keys", chain(&e), "fix the KEK file as the message says"),
    }
}

fn installed_credential() -> Option<std::path::PathBuf> {
    CREDENTIAL_STORES
        .iter()
        .map(|dir| Path::new(dir).join(CREDENTIAL_NAME))
        .find(|p| p.is_file())
}
