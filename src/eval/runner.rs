//! Runs the face pipeline over many images, on a chosen number of threads,
//! recording each image's outcome and wall time (decode included).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::pipeline::{FacePipeline, FrameAnalysis};
use crate::sources::load_image;

/// What happened to one image.
pub struct ImageOutcome {
    /// The analysis, or the error that stopped it (unreadable image, ...).
    pub analysis: Result<FrameAnalysis, String>,
    /// Decode + pipeline wall time, in seconds.
    pub seconds: f64,
}

/// Analyses every path; `progress` is called once per finished image.
pub fn analyse_all(
    pipeline: &FacePipeline,
    paths: &[PathBuf],
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> BTreeMap<PathBuf, ImageOutcome> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let started = Instant::now();
                    let analysis = load_image(path)
                        .map_err(|e| e.to_string())
                        .and_then(|img| pipeline.analyse(&img).map_err(|e| e.to_string()));
                    let outcome = ImageOutcome {
                        analysis,
                        seconds: started.elapsed().as_secs_f64(),
                    };
                    if let Ok(mut map) = results.lock() {
                        map.insert(path.clone(), outcome);
                    }
                    progress();
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
