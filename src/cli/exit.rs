//! Exit statuses other than 0 (done) and 1 (failed), for verbs whose
//! callers are scripts that must tell "no" from "broken".

/// An error that ends the process with its own status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitStatus {
    pub code: u8,
    pub message: String,
}

/// `verdict verify`: the verdict is genuine but is not an accept.
pub const NOT_AN_ACCEPT: u8 = 3;
