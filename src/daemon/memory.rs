//! The allocator's settings for a process that runs for months.
//!
//! glibc serves an allocation above its mmap threshold (128 KiB at first)
//! with its own mapping, returned to the kernel when freed, but it raises
//! the threshold to the size of any such block freed (up to 32 MiB). The
//! daemon frees decoded camera frames (megabytes each) many times a
//! second, so after the first one every frame comes from the heap arenas
//! of whichever thread decodes or analyses it, and those arenas keep what
//! they grew to. Measured with `scripts/outage` (a broker outage with
//! walk-up verdicts, when the work moves between threads): RSS rose from
//! 102 to 145 MB in steps of one frame set and never came back; with the
//! threshold fixed it stayed at 66-68 MB. Fixing it (any `mallopt` of
//! `M_MMAP_THRESHOLD` turns the dynamic adjustment off) keeps large
//! buffers in their own mappings, returned on free.

/// Blocks at least this large get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Call once at start-up.
pub fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocator parameters, under
        // glibc's own arena locks; it takes and returns no pointers.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok == 1 {
            tracing::debug!(
                threshold = MMAP_THRESHOLD,
                "allocator: fixed mmap threshold"
            );
        } else {
            tracing::warn!("allocator: mallopt(M_MMAP_THRESHOLD) refused; RSS may creep");
        }
    }
}
