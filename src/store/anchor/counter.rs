//! The hardware half of the rollback anchor: a TPM 2.0 NV counter.
//!
//! The anchor file alone cannot see a restore of the whole state
//! directory (database *and* anchor, both from the same older moment): an
//! older anchor still authenticates. A TPM's NV counter can only go up and
//! lives outside the files, so the anchor records the counter's value and
//! the counter is bumped whenever a rollback would matter; a restored
//! anchor then holds a value the TPM has passed.
//!
//! # When it is bumped
//!
//! An NV counter is flash: one increment per verdict would wear it (TPMs
//! also rate-limit NV writes). It is bumped at every unlock (each daemon
//! start and each store verb), after any commit that appends an audit
//! record other than a verdict (enrolment, revocation, lockout, unlock,
//! key and anchor events: the state a rollback would undo), and after
//! every `bump_every` commits otherwise. A copy of the state directory
//! taken since the last bump restores without notice: that window, at
//! most `bump_every` verdicts with no other event, is what the hardware
//! check leaves open.
//!
//! # Crash safety
//!
//! A bump writes the anchor with value + 1 first and increments the
//! counter second. A crash in between leaves the anchor one ahead, which
//! is accepted (and the counter caught up); an anchor behind the counter
//! is a restored copy; an anchor further ahead means the counter was
//! cleared or belongs to another TPM.
//!
//! # How the TPM is reached
//!
//! Through `tpm2-tools` (`tpm2_nvdefine`, `tpm2_nvincrement`,
//! `tpm2_nvread`, `tpm2_getcap`), the tools JetPack and Debian ship, with
//! a TCTI string (`device:/dev/tpmrm0` on a Jetson's fTPM or a discrete
//! TPM; `swtpm:host=…,port=…` for the software TPM the tests start). The
//! index is defined under the owner hierarchy with an empty owner
//! password; someone who is root on the running device with that
//! hierarchy can undefine it: the counter defends against files restored
//! from a backup or an SD card, not against root.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// The default NV index: in the owner range (0x01000000–0x01BFFFFF), away
/// from the TCG's and vendors' reserved ones.
pub const DEFAULT_NV_INDEX: u32 = 0x0150_0E1D;
/// The resource manager of the kernel's TPM driver.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// `[anchor]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CounterConfig {
    /// `none` (the anchor file only) or `tpm`.
    pub hardware_counter: CounterKind,
    /// How tpm2-tools reach the TPM.
    pub tpm_tcti: String,
    /// The NV index of the counter (defined on first use).
    pub tpm_nv_index: u32,
    /// Commits without a non-verdict audit event between two bumps.
    pub bump_every: u32,
}

impl Default for CounterConfig {
    fn default() -> Self {
        Self {
            hardware_counter: CounterKind::None,
            tpm_tcti: DEFAULT_TCTI.to_owned(),
            tpm_nv_index: DEFAULT_NV_INDEX,
            bump_every: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterConfigError {
    #[error("anchor.tpm_nv_index {0:#010x} is outside the owner range 0x01000000-0x01bfffff")]
    NvIndex(u32),
    #[error("anchor.bump_every = {0}: it must be 1..=100000")]
    BumpEvery(u32),
    #[error("anchor.tpm_tcti is empty (e.g. \"device:/dev/tpmrm0\")")]
    EmptyTcti,
}

impl CounterConfig {
    pub fn validate(&self) -> Result<(), CounterConfigError> {
        if !(0x0100_0000..=0x01BF_FFFF).contains(&self.tpm_nv_index) {
            return Err(CounterConfigError::NvIndex(self.tpm_nv_index));
        }
        if self.bump_every == 0 || self.bump_every > 100_000 {
            return Err(CounterConfigError::BumpEvery(self.bump_every));
        }
        if self.tpm_tcti.trim().is_empty() {
            return Err(CounterConfigError::EmptyTcti);
        }
        Ok(())
    }

    /// The counter this config asks for, if any.
    pub fn wanted(&self) -> Option<Tpm> {
        (self.hardware_counter == CounterKind::Tpm)
            .then(|| Tpm::new(&self.tpm_tcti, self.tpm_nv_index))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterKind {
    #[default]
    None,
    Tpm,
}

/// What the anchor file records of the counter (part of its MAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterRef {
    pub kind: CounterKind,
    /// The NV index, as `0x…` (what tpm2-tools print).
    pub nv_index: String,
    pub value: u64,
}

impl CounterRef {
    pub fn tpm(index: u32, value: u64) -> Self {
        Self {
            kind: CounterKind::Tpm,
            nv_index: format!("{index:#010x}"),
            value,
        }
    }

    pub fn index(&self) -> Option<u32> {
        u32::from_str_radix(self.nv_index.trim_start_matches("0x"), 16).ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error(
        "cannot run {tool}: {source} (install tpm2-tools, or set [anchor] hardware_counter = \"none\" \
         for a store never bound to a TPM)"
    )]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} {args} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{tool} printed {len} bytes where an 8-byte counter was expected")]
    Output { tool: &'static str, len: usize },
    #[error(
        "the TPM counter {index:#010x} went from {before} to {after} on one increment: something \
         else increments it"
    )]
    Raced { index: u32, before: u64, after: u64 },
}

/// One NV counter of one TPM.
#[derive(Debug, Clone)]
pub struct Tpm {
    tcti: String,
    index: u32,
}

impl Tpm {
    pub fn new(tcti: &str, index: u32) -> Self {
        Self {
            tcti: tcti.to_owned(),
            index,
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    fn run(&self, tool: &'static str, args: &[&str]) -> Result<Vec<u8>, CounterError> {
        let out = Command::new(tool)
            .arg("-T")
            .arg(&self.tcti)
            .args(args)
            .output()
            .map_err(|source| CounterError::Spawn { tool, source })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The tools' last lines say what went wrong; the rest is esys noise.
            let tail: Vec<&str> = stderr.lines().rev().take(2).collect();
            return Err(CounterError::Tool {
                tool,
                args: args.join(" "),
                status: out.status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        Ok(out.stdout)
    }

    fn hex(&self) -> String {
        format!("{:#010x}", self.index)
    }

    /// Whether the index is defined on this TPM.
    pub fn defined(&self) -> Result<bool, CounterError> {
        let out = self.run("tpm2_getcap", &["handles-nv-index"])?;
        let wanted = self.index;
        Ok(String::from_utf8_lossy(&out).lines().any(|l| {
            let h = l.trim().trim_start_matches("- ").trim_start_matches("0x");
            u32::from_str_radix(h, 16).is_ok_and(|h| h == wanted)
        }))
    }

    /// Defines the counter (not yet readable: a counter is initialised by
    /// its first increment).
    pub fn define(&self) -> Result<(), CounterError> {
        self.run(
            "tpm2_nvdefine",
            &[
                &self.hex(),
                "-C",
                "o",
                "-s",
                "8",
                "-a",
                "nt=counter|ownerwrite|ownerread|no_da",
            ],
        )
        .map(drop)
    }

    /// The counter's value (an error before its first increment).
    pub fn read(&self) -> Result<u64, CounterError> {
        let out = self.run("tpm2_nvread", &["-C", "o", "-s", "8", &self.hex()])?;
        let bytes: [u8; 8] = out
            .as_slice()
            .try_into()
            .map_err(|_| CounterError::Output {
                tool: "tpm2_nvread",
                len: out.len(),
            })?;
        Ok(u64::from_be_bytes(bytes))
    }

    pub fn increment(&self) -> Result<(), CounterError> {
        self.run("tpm2_nvincrement", &["-C", "o", &self.hex()])
            .map(drop)
    }

    /// Increments and checks that the counter went from `before` to
    /// `before + 1`.
    pub fn step_from(&self, before: u64) -> Result<u64, CounterError> {
        self.increment()?;
        let after = self.read()?;
        if after != before + 1 {
            return Err(CounterError::Raced {
                index: self.index,
                before,
                after,
            });
        }
        Ok(after)
    }

    /// The counter's value, defining and initialising it first when the
    /// index does not exist; also says whether it existed.
    pub fn open_or_define(&self) -> Result<(u64, bool), CounterError> {
        if self.defined()? {
            return Ok((self.read()?, true));
        }
        self.define()?;
        self.increment()?;
        Ok((self.read()?, false))
    }
}

/// How the anchor's recorded value stands to the counter's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Equal: the anchor is the newest.
    Current,
    /// One ahead: a crash between the anchor's write and the increment.
    CrashedMidBump,
    /// Behind: the anchor (and its database) are an older copy.
    Behind,
    /// More than one ahead: the counter was cleared or is another TPM's.
    Ahead,
}

pub fn standing(anchor: u64, counter: u64) -> Standing {
    match anchor.cmp(&counter) {
        std::cmp::Ordering::Equal => Standing::Current,
        std::cmp::Ordering::Less => Standing::Behind,
        std::cmp::Ordering::Greater if anchor == counter + 1 => Standing::CrashedMidBump,
        std::cmp::Ordering::Greater => Standing::Ahead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_may_lead_by_one_increment_and_never_trail() {
        assert_eq!(standing(5, 5), Standing::Current);
        assert_eq!(standing(6, 5), Standing::CrashedMidBump);
        assert_eq!(standing(4, 5), Standing::Behind);
        assert_eq!(standing(7, 5), Standing::Ahead);
        assert_eq!(standing(0, u64::MAX), Standing::Behind);
    }

    #[test]
    fn config_refuses_indices_outside_the_owner_range_and_a_zero_period() {
        let mut c = CounterConfig::default();
        assert!(c.validate().is_ok());
        c.tpm_nv_index = 0x0180_0000 + 0x0040_0000;
        assert!(c.validate().is_err());
        c = CounterConfig {
            bump_every: 0,
            ..CounterConfig::default()
        };
        assert!(c.validate().is_err());
        assert_eq!(CounterRef::tpm(0x0150_0E1D, 3).index(), Some(0x0150_0E1D));
        assert_eq!(CounterRef::tpm(0x0150_0E1D, 3).nv_index, "0x01500e1d");
    }
}
