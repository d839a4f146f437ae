//! Which similarity threshold applies: one given on the command line is used
//! as is; otherwise the manifest's, measured for a target false-match rate.

use serde::Serialize;

use crate::infer::ModelSpec;

/// The operating point shipped by default: false-match rate 1e-3.
pub const DEFAULT_OPERATING_POINT: &str = "far_1e-3";

/// The manifest threshold key for PAD models: the EER point of the
/// calibration set.
pub const PAD_OPERATING_POINT: &str = "eer";

#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    pub value: f32,
    /// Where the value came from (manifest key and measurement, or "command line").
    pub source: String,
}

/// A named operating point looked up in a model's manifest entry.
#[derive(Debug, Clone, Copy)]
pub struct OperatingPoint<'a>(pub &'a str);

impl Threshold {
    /// `given` wins; otherwise the manifest's value for the operating point.
    pub fn resolve(
        given: Option<f32>,
        spec: &ModelSpec,
        point: OperatingPoint<'_>,
    ) -> Option<Self> {
        if let Some(value) = given {
            return Some(Self {
                value,
                source: "command line".into(),
            });
        }
        spec.thresholds.get(point.0).map(|t| Self {
            value: t.value,
            source: format!("manifest {}:{} ({})", spec.id, point.0, t.measured_on),
        })
    }

    pub fn accepts(&self, similarity: f32) -> bool {
        similarity >= self.value
    }
}
