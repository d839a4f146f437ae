//! Where the sample photos live: `$EDGEID_SAMPLES_DIR`, else the cache that
//! `scripts/fetch-test-data` fills.

use std::path::PathBuf;

const CACHE: &str = ".cache/test-data/face_recognition-1.3.0/tests/test_images";

pub fn samples_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGEID_SAMPLES_DIR") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from(CACHE);
    if here.is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CACHE)
}

pub fn default_sample(name: &str) -> anyhow::Result<PathBuf> {
    let path = samples_dir().join(name);
    anyhow::ensure!(
        path.is_file(),
        "sample photo {} is missing: run scripts/fetch-test-data (or set EDGEID_SAMPLES_DIR)",
        path.display()
    );
    Ok(path)
}
