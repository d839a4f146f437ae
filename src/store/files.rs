//! The state directory and the files edgeid keeps in it: private whatever
//! the umask (directory 0700; database, WAL, shared memory and anchor
//! 0600), and owned by whoever runs edgeid.
//!
//! An existing directory open to group or others is tightened to 0700. One
//! owned by another user is refused: its owner could swap the store's
//! files. Root is the exception (an administrator running a verb on the
//! service user's directory); what root creates there is handed to the
//! directory's owner, so the service can still open it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::StoreError;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Who new files in the state directory go to: `Some` only when root
/// writes into another user's directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner(Option<(u32, u32)>);

impl Owner {
    fn hand_over(self, file: &File) -> io::Result<()> {
        match self.0 {
            Some((uid, gid)) => std::os::unix::fs::fchown(file, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }
}

/// What to do with an existing state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirPolicy {
    Keep,
    Tighten,
    Refuse,
}

fn dir_policy(owner: u32, mode: u32, euid: u32) -> DirPolicy {
    if owner != euid && euid != 0 {
        DirPolicy::Refuse
    } else if mode & 0o077 != 0 {
        DirPolicy::Tighten
    } else {
        DirPolicy::Keep
    }
}

fn dir_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::StateDir {
        path: path.to_owned(),
        source,
    }
}

/// Makes `dir` a private state directory: creates it (and missing parents)
/// 0700 when `create`, tightens a loose one, refuses one owned by another
/// user. Returns who new files in it must belong to.
pub fn prepare_dir(dir: &Path, create: bool) -> Result<Owner, StoreError> {
    if create && !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(dir_error(dir))?;
        // The mode above went through the umask; this one does not.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(dir_error(dir))?;
    }
    let meta = std::fs::metadata(dir).map_err(dir_error(dir))?;
    let euid = nix::unistd::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    match dir_policy(meta.uid(), mode, euid) {
        DirPolicy::Refuse => {
            return Err(StoreError::StateDirOwner {
                path: dir.to_owned(),
                owner: meta.uid(),
                uid: euid,
            });
        }
        DirPolicy::Tighten => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(dir_error(dir))?;
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "the state directory was open to other users: tightened to 0700");
        }
        DirPolicy::Keep => {}
    }
    Ok(if meta.uid() != euid {
        Owner(Some((meta.uid(), meta.gid())))
    } else {
        Owner::default()
    })
}

/// Creates `path` empty with mode 0600 when missing; tightens it to 0600
/// when it exists with group or other access. A symlink is refused.
pub fn private_file(path: &Path, owner: Owner) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(dir_error(path))?;
    let meta = file.metadata().map_err(dir_error(path))?;
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(dir_error(path))?;
    }
    if meta.uid() == nix::unistd::geteuid().as_raw() {
        owner.hand_over(&file).map_err(dir_error(path))?;
    }
    Ok(())
}

/// Tightens `path` to 0600 if it exists with group or other access (a file
/// an older edgeid, or SQLite under a loose umask, created).
pub fn tighten(path: &Path) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(dir_error(path))?;
            tracing::warn!(file = %path.display(), "a store file was open to other users: tightened to 0600");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(dir_error(path)(e)),
    }
}

/// Replaces `dir/name` with `bytes` atomically and durably: a 0600 temporary
/// file written and fsynced, renamed over the old one, the directory
/// fsynced. A reader sees the old contents or the new, never a mixture.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], owner: Owner) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    owner.hand_over(&file)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// An exclusive lock on the directory (flock on its descriptor), held until
/// dropped: processes sharing the state directory take turns.
pub fn lock_dir(dir: &Path) -> io::Result<Flock<File>> {
    let handle = File::open(dir)?;
    Flock::lock(handle, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_directories_are_tightened_and_foreign_ones_refused() {
        assert_eq!(dir_policy(1000, 0o700, 1000), DirPolicy::Keep);
        assert_eq!(dir_policy(1000, 0o755, 1000), DirPolicy::Tighten);
        assert_eq!(dir_policy(1000, 0o710, 1000), DirPolicy::Tighten);
        assert_eq!(dir_policy(0, 0o700, 1000), DirPolicy::Refuse);
        assert_eq!(dir_policy(1001, 0o700, 1000), DirPolicy::Refuse);
        // Root may act on the service user's directory (and tightens it).
        assert_eq!(dir_policy(1000, 0o700, 0), DirPolicy::Keep);
        assert_eq!(dir_policy(1000, 0o755, 0), DirPolicy::Tighten);
    }
}
