//! The clock (a verdict's `exp` is only as good as it) and the disk the
//! state directory is on (a full disk fails the door closed).

use std::path::Path;

use super::report::Check;

/// systemd-timesyncd touches this file once the clock is synchronised.
const TIMESYNCD_FLAG: &str = "/run/systemd/timesync/synchronized";
/// 2025-01-01T00:00:00Z: a clock before it was never set (a board
/// without an RTC battery starts in 1970 or at its image's build date).
const CLOCK_FLOOR: i64 = 1_735_689_600;
/// adjtimex(2): the clock state "unsynchronised", and its status bit.
const TIME_ERROR: i32 = 5;
const STA_UNSYNC: i32 = 0x0040;

pub fn time_sync() -> Check {
    const NAME: &str = "time";
    let now = edgeid::store::unix_now();
    let now_text = edgeid::store::rfc3339_utc(now.saturating_mul(1000));
    if now < CLOCK_FLOOR {
        return Check::fail(
            NAME,
            format!("the clock says {now_text}: it was never set"),
            "set up time synchronisation (systemd-timesyncd or chrony) and an RTC; verdicts carry exp, controllers reject them otherwise",
        );
    }
    if Path::new(TIMESYNCD_FLAG).exists() {
        return Check::ok(
            NAME,
            format!("{now_text}, synchronised (systemd-timesyncd)"),
        );
    }
    let mut tx: libc::timex = zeroed_timex();
    // SAFETY: adjtimex with modes 0 only reads the kernel's clock state
    // into `tx`, a valid, exclusively borrowed timex.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state >= 0 && state != TIME_ERROR && tx.status & STA_UNSYNC == 0 {
        return Check::ok(
            NAME,
            format!(
                "{now_text}, synchronised (kernel NTP state, max error {} ms)",
                tx.maxerror / 1000
            ),
        );
    }
    Check::warn(
        NAME,
        format!("{now_text}, but nothing says the clock is synchronised"),
        "enable time sync (timedatectl set-ntp true, or chrony): verdicts live verdict_lifetime_secs and controllers check exp against their own clock",
    )
}

fn zeroed_timex() -> libc::timex {
    // SAFETY: timex is a plain C struct of integers, for which all-zero is
    // a valid value (modes 0: read only).
    unsafe { std::mem::zeroed() }
}

/// Below this much free space the store's next writes may fail.
const FAIL_BELOW: u64 = 50 << 20;
/// Below this, a few days of audit records at a busy door.
const WARN_BELOW: u64 = 500 << 20;

pub fn disk(state_dir: &Path) -> Check {
    const NAME: &str = "disk";
    // The state directory may not exist yet (before provisioning).
    let Some(existing) = state_dir.ancestors().find(|p| p.exists()) else {
        return Check::fail(
            NAME,
            "no existing directory above the state directory",
            "check --state-dir",
        );
    };
    match nix::sys::statvfs::statvfs(existing) {
        Ok(s) => {
            let free = times(s.blocks_available(), s.fragment_size());
            let total = times(s.blocks(), s.fragment_size());
            let summary = format!(
                "{} MiB free of {} MiB at {}",
                free >> 20,
                total >> 20,
                existing.display()
            );
            let fix = "free space or move the state directory: a full disk stops enrolment, verdicts and the audit log";
            if free < FAIL_BELOW {
                Check::fail(NAME, summary, fix)
            } else if free < WARN_BELOW {
                Check::warn(NAME, summary, fix)
            } else {
                Check::ok(NAME, summary)
            }
        }
        Err(e) => Check::fail(
            NAME,
            format!("cannot stat the file system of {}: {e}", existing.display()),
            "check --state-dir",
        ),
    }
}

/// Blocks times block size, whatever integer types statvfs uses here.
fn times(blocks: impl Into<u64>, size: impl Into<u64>) -> u64 {
    blocks.into().saturating_mul(size.into())
}
