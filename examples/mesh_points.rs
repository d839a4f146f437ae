//! Prints the face mesh of the main face of each image as one JSON line
//! (`{"path", "points": [[x, y, z]; 468]}`): the input to
//! `scripts/calibrate/alignment.py`, which fits the chip template to dlib's
//! own landmarks.
//!
//! `cargo run --release --example mesh_points -- IMAGE...`

use edgeid::infer::{Manifest, default_backend, manifest::default_models_dir};
use edgeid::pipeline::{FacePipeline, PipelineConfig};
use edgeid::sources::load_image;

fn main() -> anyhow::Result<()> {
    let manifest = Manifest::open(&default_models_dir())?;
    let pipeline = FacePipeline::load(
        &manifest,
        default_backend().as_ref(),
        PipelineConfig::default(),
    )?;
    for path in std::env::args().skip(1) {
        let image = load_image(path.as_ref())?;
        let analysis = pipeline.analyse(&image)?;
        let points = analysis.face.map(|f| f.mesh.points).unwrap_or_default();
        println!("{}", serde_json::json!({ "path": path, "points": points }));
    }
    Ok(())
}
