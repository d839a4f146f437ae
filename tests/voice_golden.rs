//! The voice front end and embedder against the reference Python
//! implementation (Resemblyzer 0.1.4's own `audio.py` on librosa 0.10, and
//! its network in numpy), whose output scripts/convert/resemblyzer.py saved
//! in tests/fixtures/voice/: mel frames within 1e-3, embedding cosine at
//! least 0.999.

mod support;

use std::path::PathBuf;

use edgeid::infer::{Manifest, default_backend};
use edgeid::sources::audio::load_file;
use edgeid::voice::embed::cosine;
use edgeid::voice::partials::partial_starts;
use edgeid::voice::{VoiceEmbedder, VoicePipeline};

fn fixture(name: &str) -> PathBuf {
    support::repo().join("tests/fixtures/voice").join(name)
}

fn f32s(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture(name)).expect("fixture committed");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn meta() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("golden.json")).expect("golden.json");
    serde_json::from_str(&text).expect("golden.json is JSON")
}

fn pipeline() -> VoicePipeline {
    pipeline_on(1)
}

/// The pipeline with its partials embedded on up to `threads` threads.
fn pipeline_on(threads: usize) -> VoicePipeline {
    let manifest = Manifest::open(&support::repo().join("models")).expect("models/manifest.toml");
    let embedder = VoiceEmbedder::load(&manifest, default_backend().as_ref())
        .expect("voice embedder")
        .with_threads(threads);
    VoicePipeline::new(embedder)
}

#[test]
fn mel_frames_match_the_reference_within_1e_3() {
    let pre = f32s("golden_pre.f32");
    let reference = f32s("golden_mel.f32");
    let mels = pipeline().mels(&pre);
    assert_eq!(mels.dim().0 as u64, meta()["mel_frames"].as_u64().unwrap());
    assert_eq!(mels.len(), reference.len());
    let (mut max_diff, mut max_val) = (0.0f32, 0.0f32);
    for (a, b) in mels.iter().zip(&reference) {
        max_diff = max_diff.max((a - b).abs());
        max_val = max_val.max(b.abs());
    }
    eprintln!("mel: max abs diff {max_diff:.3e} (largest value {max_val:.3})");
    assert!(max_val > 1.0, "the fixture holds real speech energy");
    assert!(max_diff <= 1e-3, "max abs diff {max_diff}");
}

#[test]
fn partials_and_embedding_match_the_reference() {
    let pre = f32s("golden_pre.f32");
    let starts: Vec<usize> = meta()["partial_starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(partial_starts(pre.len()), starts);
    let reference = f32s("golden_embed.f32");
    let print = pipeline().embed_speech(&pre).expect("embed");
    let cos = cosine(&print.embedding, &reference);
    eprintln!("embedding cosine to the reference: {cos:.6}");
    assert!(cos >= 0.999, "cosine {cos}");
}

#[test]
fn whole_pipeline_from_the_wav_stays_close_to_the_reference() {
    // Our energy VAD instead of webrtcvad decides which pauses are cut, so
    // this compares the whole path, file to embedding, with a looser bound.
    let clip = load_file(&fixture("golden.wav"), 60.0).expect("golden.wav");
    assert_eq!(
        clip.samples.len() as u64,
        meta()["input_samples"].as_u64().unwrap()
    );
    let print = pipeline().embed(&clip.samples, 1.0).expect("embed");
    let reference = f32s("golden_embed.f32");
    let cos = cosine(&print.embedding, &reference);
    let pre_len = meta()["pre_samples"].as_u64().unwrap() as f64 / 16_000.0;
    eprintln!(
        "file -> embedding cosine {cos:.5}; speech {:.2} s (reference trim {pre_len:.2} s)",
        print.speech_s
    );
    assert!(cos >= 0.98, "cosine {cos}");
    assert!((print.speech_s - pre_len).abs() < 1.0);
}

#[test]
fn partials_embedded_side_by_side_give_the_sequential_embedding() {
    // The reference speech (5 partials) and the daemon's probe of the
    // golden clip (the first 3 s: 2.7 s of speech, 2 partials).
    let pre = f32s("golden_pre.f32");
    let clip = load_file(&fixture("golden.wav"), 60.0).expect("golden.wav");
    let probe = &clip.samples[..48_000];
    let sequential = pipeline();
    let whole = sequential.embed_speech(&pre).expect("embed");
    let short = sequential.embed(probe, 0.0).expect("embed");
    assert_eq!((whole.partials, short.partials), (5, 2));
    for threads in [2, 3, 5, 8] {
        let parallel = pipeline_on(threads);
        assert_eq!(parallel.embedder().threads(), threads);
        // Bit for bit: each partial's run is the same, and the partials
        // are summed in the same order.
        let p = parallel.embed_speech(&pre).expect("embed");
        assert_eq!(
            p.embedding, whole.embedding,
            "{threads} threads, 5 partials"
        );
        let p = parallel.embed(probe, 0.0).expect("embed");
        assert_eq!(
            p.embedding, short.embedding,
            "{threads} threads, 2 partials"
        );
    }
}
