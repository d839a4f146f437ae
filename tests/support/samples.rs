//! The sample photos: the one place that finds them.
//!
//! `scripts/fetch-test-data` downloads them into `$EDGEID_TEST_DATA`
//! (default `<repo>/.cache/test-data`); tests read them from the same place.

use std::path::PathBuf;

use super::prerequisites::Missing;
use super::repo;

/// Where `scripts/fetch-test-data` puts its downloads.
pub const TEST_DATA_ENV: &str = "EDGEID_TEST_DATA";

/// The photos the tests use, inside the downloaded face_recognition sdist.
const IMAGES: &str = "face_recognition-1.3.0/tests/test_images";
const USED: [&str; 5] = [
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama_partial_face.jpg",
    "biden.jpg",
];

/// The directory holding the sample photos, or what is missing.
pub fn samples() -> Result<PathBuf, Missing> {
    let root = std::env::var_os(TEST_DATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/test-data"));
    let dir = root.join(IMAGES);
    let absent: Vec<&str> = USED
        .into_iter()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    let what = match absent.len() {
        0 => return Ok(dir),
        n if n == USED.len() => format!("the sample photos in {}", dir.display()),
        _ => format!(
            "the sample photos {} in {}",
            absent.join(", "),
            dir.display()
        ),
    };
    Err(Missing::setup(
        what,
        "run scripts/fetch-test-data (it honours EDGEID_TEST_DATA too)",
    ))
}
