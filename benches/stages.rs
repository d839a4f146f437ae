//! Criterion benches for the hot face stages on a 640×480 frame with one
//! face (the sample obama.jpg placed on a grey canvas; run
//! `scripts/fetch-test-data` first). `edgeid bench` gives the whole-pipeline
//! percentiles; this gives stable per-stage figures for regressions.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};

use edgeid::eval::bench::camera_frame;
use edgeid::infer::{Manifest, default_backend, manifest::default_models_dir};
use edgeid::pipeline::{FacePipeline, PipelineConfig};
use edgeid::sources::load_image;
use edgeid::vision::align::{ChipTemplate, align};
use edgeid::vision::liveness::{LivenessSample, MidlineView, tip_shift};

fn sample() -> PathBuf {
    std::env::var_os("EDGEID_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(".cache/test-data/face_recognition-1.3.0/tests/test_images")
        })
        .join("obama.jpg")
}

fn stages(c: &mut Criterion) {
    let manifest = Manifest::open(&default_models_dir()).expect("models/manifest.toml");
    let pipeline = FacePipeline::load(
        &manifest,
        default_backend().as_ref(),
        PipelineConfig::default(),
    )
    .expect("face models");
    let photo = load_image(&sample()).expect("sample photo: run scripts/fetch-test-data");
    let frame = camera_frame(&photo, 640, 480);
    let detection = pipeline
        .detector()
        .detect(&frame)
        .expect("detect")
        .remove(0);
    let mesh = pipeline
        .landmarker()
        .landmarks(&frame, &detection)
        .expect("mesh");
    let template = ChipTemplate::for_alignment(Default::default(), pipeline.embedder().chip_size());
    let chip = align(&frame, &mesh, &template).expect("align");
    let embedding = pipeline.embedder().embed(&chip).expect("embed");

    let mut group = c.benchmark_group("face_stages");
    group.sample_size(30);
    group.bench_function("detect_640x480", |b| {
        b.iter(|| pipeline.detector().detect(&frame))
    });
    group.bench_function("landmarks", |b| {
        b.iter(|| pipeline.landmarker().landmarks(&frame, &detection))
    });
    group.bench_function("align_chip", |b| b.iter(|| align(&frame, &mesh, &template)));
    group.bench_function("embed", |b| b.iter(|| pipeline.embedder().embed(&chip)));
    group.bench_function("cosine_128", |b| {
        b.iter(|| std::hint::black_box(&embedding).cosine(&embedding))
    });
    group.bench_function("whole_pipeline", |b| b.iter(|| pipeline.analyse(&frame)));
    // The liveness track's pixel check: one view per frame, and one
    // tracking of the nose midline per head-like anchor it is compared with.
    let sample = LivenessSample::from_mesh(&mesh);
    group.bench_function("midline_view", |b| {
        b.iter(|| MidlineView::capture(&frame, &sample))
    });
    let view = MidlineView::capture(&frame, &sample).expect("midline view");
    group.bench_function("tip_shift", |b| b.iter(|| tip_shift(&view, &view)));
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
