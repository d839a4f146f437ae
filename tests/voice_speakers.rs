//! Synthetic speakers (espeak-ng voices, no recordings needed): the same
//! voice saying different sentences scores above a different voice saying
//! the same sentence, through the whole path (WAV file at espeak's 22.05
//! kHz, resampling, front end, embedder). Accuracy on real speech is
//! measured by `edgeid eval voice`, not here.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use edgeid::infer::{Manifest, default_backend};
use edgeid::sources::audio::load_file;
use edgeid::voice::embed::cosine;
use edgeid::voice::{VoiceEmbedder, VoicePipeline};

const FIRST: &str =
    "Please open the side door, I have an appointment with the office manager at ten.";
const SECOND: &str =
    "My badge stopped working this morning, so I am using my voice to get in today.";

fn say(dir: &Path, voice: &str, text: &str, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("run espeak-ng");
    assert!(status.success(), "espeak-ng -v {voice} failed");
    path
}

#[test]
fn the_same_synthetic_voice_scores_above_another_voice() {
    require!(support::tools(&["espeak-ng"]));
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::open(&support::repo().join("models")).expect("manifest");
    let pipeline = VoicePipeline::new(
        VoiceEmbedder::load(&manifest, default_backend().as_ref()).expect("embedder"),
    );
    let embed = |path: PathBuf| {
        let clip = load_file(&path, 60.0).expect("espeak wav");
        pipeline
            .embed(&clip.samples, 2.0)
            .expect("speech")
            .embedding
    };
    // Pairs of (voice, other voice): a male and a female variant, and two accents.
    for (a, b) in [("en-us+m3", "en-us+f3"), ("en-gb", "en-us+f4")] {
        let a1 = embed(say(dir.path(), a, FIRST, "a1.wav"));
        let a2 = embed(say(dir.path(), a, SECOND, "a2.wav"));
        let b1 = embed(say(dir.path(), b, FIRST, "b1.wav"));
        let same = cosine(&a1, &a2);
        let other = cosine(&a1, &b1);
        eprintln!("{a} vs {a}: {same:.3}; {a} vs {b}: {other:.3}");
        assert!(
            same > other + 0.02,
            "{a}: same voice {same}, other voice {other}"
        );
    }
}
