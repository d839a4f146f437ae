//! Gallery figures for `edgeid bench` and `benches/gallery.rs`: 1:N
//! identification over `n` random 128-d templates (the three best subjects,
//! as `edgeid identify` and the daemon ask), every row's exact score for
//! comparison, and the time to open `n` sealed templates from a fresh store
//! into a gallery.

use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::decision::gallery::{Gallery, GalleryError};
use crate::decision::synthetic::random_templates;
pub use crate::decision::verify::IDENTIFY_TOP_K;
use crate::store::templates::{self, ModelLabel, NewTemplate};
use crate::store::{DataKey, Store, StoreError};

pub const BENCH_DIM: usize = 128;
const TEMPLATES_PER_SUBJECT: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct GalleryBenchReport {
    pub templates: usize,
    pub dim: usize,
    pub score_runs: usize,
    /// 1:N over all templates, one core: the best `IDENTIFY_TOP_K`
    /// subjects (quantised pass, then exact f32 rescoring of the subjects
    /// that could rank).
    pub one_to_n_p50_ms: f64,
    pub one_to_n_p99_ms: f64,
    /// Every template's exact f32 score (`score_all`), for comparison.
    pub score_all_p50_ms: f64,
    pub score_all_p99_ms: f64,
    /// Opening all templates (read, unseal, build the matrix) from a store.
    pub open_ms: f64,
    /// Writing them (sealing, one transaction) — setup, for context.
    pub write_ms: f64,
    pub memory_locked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error("scratch directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("random number generator failed")]
    Random,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn probe(probes: &[f32], dim: usize, run: usize) -> &[f32] {
    let count = (probes.len() / dim.max(1)).max(1);
    &probes[(run % count) * dim..][..dim]
}

/// Times 1:N identification (the best `IDENTIFY_TOP_K` subjects) over an
/// in-memory gallery, cycling through `probes`.
pub fn bench_scoring(gallery: &Gallery, probes: &[f32], runs: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for r in 0..runs {
        let p = probe(probes, gallery.dim(), r);
        let t = Instant::now();
        let top = gallery.top_subjects(p, IDENTIFY_TOP_K);
        times.push(t.elapsed());
        std::hint::black_box(top);
    }
    times.sort();
    times
}

/// Times scoring every template exactly (`score_all`) and taking the best.
pub fn bench_score_all(gallery: &Gallery, probes: &[f32], runs: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(gallery.len());
    let mut times = Vec::with_capacity(runs);
    for r in 0..runs {
        let p = probe(probes, gallery.dim(), r);
        let t = Instant::now();
        gallery.score_all(p, &mut out);
        let best = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        times.push(t.elapsed());
        std::hint::black_box(best);
    }
    times.sort();
    times
}

/// Both figures for `n` templates, using a scratch store in the temp dir.
pub fn bench_gallery(n: usize) -> Result<GalleryBenchReport, BenchError> {
    let data = random_templates(n, BENCH_DIM, 0x5eed_1234);
    let probes = random_templates(16, BENCH_DIM, 0xfeed_5678);
    let subjects: Vec<String> = (0..n.div_ceil(TEMPLATES_PER_SUBJECT))
        .map(|i| format!("s{i:07}"))
        .collect();

    let mut tag = [0u8; 8];
    SystemRandom::new()
        .fill(&mut tag)
        .map_err(|_| BenchError::Random)?;
    let dir = std::env::temp_dir().join(format!("edgeid-bench-{}", hex::encode(tag)));
    let result = (|| {
        let mut store = Store::create(&dir)?;
        let dek = DataKey::generate().map_err(|_| BenchError::Random)?;
        let batch: Vec<(&str, Vec<NewTemplate<'_>>)> = subjects
            .iter()
            .enumerate()
            .map(|(s, id)| {
                let rows = (s * TEMPLATES_PER_SUBJECT)..((s + 1) * TEMPLATES_PER_SUBJECT).min(n);
                let t = rows
                    .map(|r| NewTemplate {
                        modality: "face",
                        model_id: "bench",
                        model_sha256: "-",
                        vector: &data[r * BENCH_DIM..(r + 1) * BENCH_DIM],
                        quality: serde_json::Value::Null,
                    })
                    .collect();
                (id.as_str(), t)
            })
            .collect();
        let t = Instant::now();
        templates::enroll_batch(&mut store, &dek, &batch)?;
        let write_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let model = ModelLabel {
            id: "bench",
            sha256: "-",
        };
        let load = Gallery::open(&store, &dek, "face", model, None)?;
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let gallery = load.gallery;
        let runs = if n >= 50_000 { 50 } else { 200 };
        let times = bench_scoring(&gallery, &probes, runs);
        let all = bench_score_all(&gallery, &probes, runs);
        Ok(GalleryBenchReport {
            templates: gallery.len(),
            dim: BENCH_DIM,
            score_runs: runs,
            one_to_n_p50_ms: percentile(&times, 0.5),
            one_to_n_p99_ms: percentile(&times, 0.99),
            score_all_p50_ms: percentile(&all, 0.5),
            score_all_p99_ms: percentile(&all, 0.99),
            open_ms,
            write_ms,
            memory_locked: gallery.is_memory_locked(),
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
