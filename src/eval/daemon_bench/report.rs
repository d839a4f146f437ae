//! Statistics over the measured verdicts and where their time went.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Sample, TARGET_P99_MS};
use crate::eval::metrics::percentile;
use crate::store::{Store, StoreError, audit};

/// Fills `pipeline_ms` from the audit log: each decision's record holds
/// its verdict's `seq` and the face pipeline's stage timings, or the voice
/// stages' (`voice.detail.timings`).
pub fn add_pipeline_times(store: &Store, samples: &mut [Sample]) -> Result<(), StoreError> {
    let mut by_seq = HashMap::new();
    for record in audit::export(store)? {
        let d = &record.detail;
        let total = d["timings"]["total"]
            .as_f64()
            .or_else(|| d["voice"]["detail"]["timings"]["total"].as_f64());
        if let (Some(seq), Some(total)) = (d["seq"].as_u64(), total) {
            by_seq.insert(seq, total);
        }
    }
    for s in samples {
        s.pipeline_ms = by_seq.get(&s.seq).copied();
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let mean = if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        };
        Self {
            count: v.len(),
            mean_ms: mean,
            p50_ms: percentile(&v, 50.0),
            p99_ms: percentile(&v, 99.0),
            max_ms: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// One part of the way from request to verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub name: &'static str,
    pub what: &'static str,
    pub stats: Stats,
}

/// What the bench's requests verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchModality {
    /// The face at the camera (`[decision] modalities = "face"`).
    Face,
    /// The voice at the microphone (`[decision] modalities = "voice"`).
    Voice,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonBenchReport {
    pub modality: BenchModality,
    pub requests: usize,
    pub warmup: usize,
    /// Verdicts whose signature and nonce verified.
    pub verified: usize,
    pub decisions: BTreeMap<String, usize>,
    pub broker: String,
    pub camera: String,
    /// The microphone and what was said into it (voice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub microphone: Option<String>,
    /// tract threads per model run in the daemon.
    pub inference_threads: usize,
    /// Voice: partial utterances embedded side by side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_partial_threads: Option<usize>,
    /// Frame arrival → verdict received on the bus (the acceptance figure);
    /// for voice, the probe's last audio chunk → verdict.
    pub frame_to_bus: Stats,
    pub request_to_verdict: Stats,
    /// frame → bus = pipeline + engine_other + sink_to_socket + broker_to_subscriber.
    pub breakdown: Vec<Segment>,
    pub target_p99_ms: f64,
    pub meets_target: bool,
    pub samples: Vec<Sample>,
}

impl DaemonBenchReport {
    pub fn new(
        modality: BenchModality,
        samples: Vec<Sample>,
        warmup: usize,
        broker: String,
        camera: String,
    ) -> DaemonBenchReport {
        let mut decisions = BTreeMap::new();
        for s in &samples {
            *decisions
                .entry(format!("{} ({})", s.decision, s.reason))
                .or_insert(0) += 1;
        }
        let of = |f: &dyn Fn(&Sample) -> Option<f64>| Stats::of(samples.iter().filter_map(f));
        let frame_to_bus = of(&|s| s.frame_to_bus_ms);
        let segment = |name, what, stats| Segment { name, what, stats };
        let (wait, pipeline, rest) = match modality {
            BenchModality::Face => (
                "request over MQTT, then the wait for a frame captured after it",
                "face pipeline on the frame (audit record)",
                "rest of the engine: wake-up, scoring, lockout, seq, signing, audit (SQLite commits)",
            ),
            BenchModality::Voice => (
                "request over MQTT, then listening until 2.7 s of speech are held (checked every 0.5 s of audio)",
                "voice stages on the probe: silence trim, mel, embedding (audit record)",
                "rest of the engine: taking the last chunk and checking the speech held, scoring, replay check, lockout, seq, signing, audit (SQLite commits)",
            ),
        };
        let breakdown = vec![
            segment("request_to_frame", wait, of(&|s| s.request_to_frame_ms)),
            segment("pipeline", pipeline, of(&|s| s.pipeline_ms)),
            segment(
                "engine_other",
                rest,
                of(&|s| Some(s.frame_to_sink_ms? - s.pipeline_ms?)),
            ),
            segment(
                "sink_to_socket",
                "MQTT sink: queue bookkeeping, hand-over to the client, socket write",
                of(&|s| s.sink_to_socket_ms),
            ),
            segment(
                "sink_to_disk",
                "on-disk queue write (overlaps sink_to_socket when nothing older is queued)",
                of(&|s| s.sink_to_disk_ms),
            ),
            segment(
                "broker_to_subscriber",
                "broker forwarding and the bench's subscriber",
                of(&|s| s.socket_to_subscriber_ms),
            ),
        ];
        DaemonBenchReport {
            modality,
            requests: samples.len(),
            warmup,
            verified: samples.len(),
            decisions,
            broker,
            camera,
            microphone: None,
            inference_threads: 1,
            voice_partial_threads: None,
            meets_target: frame_to_bus.count > 0 && frame_to_bus.p99_ms <= TARGET_P99_MS,
            frame_to_bus,
            request_to_verdict: of(&|s| Some(s.request_to_verdict_ms)),
            breakdown,
            target_p99_ms: TARGET_P99_MS,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_nearest_rank_percentiles() {
        let s = Stats::of((1..=200).map(f64::from));
        assert_eq!(s.count, 200);
        assert_eq!(s.p50_ms, 100.0);
        assert_eq!(s.p99_ms, 198.0);
        assert_eq!(s.max_ms, 200.0);
        assert!(Stats::of([]).p50_ms.is_nan());
    }
}
