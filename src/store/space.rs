//! A full filesystem, recognised: SQLite reports it as `SQLITE_FULL`, or,
//! when growing its shared-memory index or syncing, as one of the
//! `SQLITE_IOERR_*` codes ("disk I/O error", extended code 4874 for the
//! index) with the system error `ENOSPC`; a file write fails with
//! `ENOSPC` (or `EDQUOT` under a quota). These become
//! [`StoreError::DiskFull`](super::StoreError::DiskFull) and
//! [`AnchorError::DiskFull`](super::AnchorError::DiskFull), which say so.
//!
//! Reading needs no space: [`super::Store::open_for_reading`] falls back to
//! a read-only connection that keeps the write-ahead log's index in memory
//! instead of growing the `-shm` file.

use rusqlite::ffi;

/// Whether an I/O error means the filesystem (or the user's quota) is full.
pub fn io_is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Whether SQLite failed for want of space. An `SQLITE_IOERR` carries no
/// errno in the error value; SQLite leaves the failing call's `errno` in
/// place, so it is read on the same thread, right after the call.
pub fn sqlite_is_full(e: &rusqlite::Error) -> bool {
    let rusqlite::Error::SqliteFailure(err, _) = e else {
        return false;
    };
    match err.code {
        ffi::ErrorCode::DiskFull => true,
        ffi::ErrorCode::SystemIoFailure => io_is_full(&std::io::Error::last_os_error()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_is_told_from_other_failures() {
        assert!(io_is_full(&std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!io_is_full(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
        let full = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_FULL), None);
        assert!(sqlite_is_full(&full));
        let busy = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), None);
        assert!(!sqlite_is_full(&busy));
    }
}
