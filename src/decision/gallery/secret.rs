//! A buffer of template data: `mlock`ed where the process may (kept out of
//! swap) and zeroised — its whole allocation — when wiped or dropped.

use zeroize::Zeroize;

pub(super) struct Secret<T: Zeroize> {
    data: Vec<T>,
    locked: bool,
}

impl<T: Zeroize> Secret<T> {
    /// Takes ownership of `data` and locks its allocation. `data` must be at
    /// its final size: it is never grown afterwards (no reallocation can
    /// leave a stray copy), and `what` names it in the warning when the
    /// lock is refused.
    pub(super) fn new(data: Vec<T>, what: &'static str) -> Self {
        let locked = lock(&data, what);
        Self { data, locked }
    }

    pub(super) fn as_slice(&self) -> &[T] {
        &self.data
    }

    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    pub(super) fn is_locked(&self) -> bool {
        self.locked
    }

    /// Zeroes the whole allocation (spare capacity included) and unlocks it.
    pub(super) fn wipe(&mut self) {
        self.data.zeroize();
        if self.locked {
            // SAFETY: munlock only changes paging; this is exactly the range
            // `lock` locked (the allocation is still alive: zeroize keeps the
            // capacity, and the vector was never reallocated).
            unsafe {
                libc::munlock(
                    self.data.as_ptr().cast(),
                    self.data.capacity() * size_of::<T>(),
                );
            }
            self.locked = false;
        }
    }

    /// Wipes, then reports whether every byte of the allocation is zero
    /// (tests of the wipe).
    #[cfg(test)]
    pub(super) fn wipe_and_check(&mut self) -> bool {
        self.wipe();
        let bytes = self.data.capacity() * size_of::<T>();
        // SAFETY: reads `bytes` bytes of the vector's live allocation, which
        // is that long; `wipe` has just written every byte of the capacity
        // (zeroize covers the spare capacity too), so none is uninitialised,
        // and u8 has no invalid values.
        let raw = unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<u8>(), bytes) };
        raw.iter().all(|&b| b == 0)
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Keeps the buffer out of swap when RLIMIT_MEMLOCK allows.
fn lock<T>(data: &Vec<T>, what: &'static str) -> bool {
    let bytes = data.capacity() * size_of::<T>();
    if bytes == 0 {
        return false;
    }
    // SAFETY: mlock only changes paging of the range, which is exactly the
    // vector's live allocation; the vector is never reallocated afterwards
    // (`Secret` exposes no way to grow it) and `wipe` unlocks before it is
    // freed.
    let rc = unsafe { libc::mlock(data.as_ptr().cast(), bytes) };
    if rc != 0 {
        tracing::warn!(
            bytes,
            what,
            error = %std::io::Error::last_os_error(),
            "could not mlock the gallery (raise LimitMEMLOCK=); templates may be swapped out"
        );
        return false;
    }
    true
}
