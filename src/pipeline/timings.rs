//! How long each stage took on one frame.

use std::time::Duration;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimings {
    #[serde(serialize_with = "as_ms")]
    pub detect: Duration,
    #[serde(serialize_with = "as_ms")]
    pub landmarks: Duration,
    #[serde(serialize_with = "as_ms")]
    pub align: Duration,
    #[serde(serialize_with = "as_ms")]
    pub quality: Duration,
    #[serde(serialize_with = "as_ms")]
    pub embed: Duration,
    #[serde(serialize_with = "as_ms")]
    pub total: Duration,
}

impl StageTimings {
    /// (stage name, duration) in pipeline order, total last.
    pub fn stages(&self) -> [(&'static str, Duration); 6] {
        [
            ("detect", self.detect),
            ("landmarks", self.landmarks),
            ("align", self.align),
            ("quality", self.quality),
            ("embed", self.embed),
            ("total", self.total),
        ]
    }
}

fn as_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}
