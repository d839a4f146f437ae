//! What this binary is: version, git revision and features, recorded in
//! every audit record and shown by `--version`.

use serde::Serialize;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_REVISION: &str = env!("EDGEID_GIT_REVISION");
pub const FEATURES: &str = env!("EDGEID_FEATURES");

#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub git_revision: &'static str,
    pub features: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: VERSION,
    git_revision: GIT_REVISION,
    features: FEATURES,
};

/// "0.1.0 (rev abc123, features: none)", for `--version`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (rev ",
    env!("EDGEID_GIT_REVISION"),
    ", features: ",
    env!("EDGEID_FEATURES"),
    ")"
);
