//! Synthetic speakers (espeak-ng voices, no recordings needed): the same
//! voice saying different sentences scores above a different voice saying
//! the same sentence, through the whole path (WAV file at espeak's 22.05
//! kHz, resampling, front end, embedder). Accuracy on real speech is
//! measured by `edgeid eval voice`, not here.

mod support;

use std::path::PathBuf;

use edgeid::infer::{Manifest, default_backend};
use edgeid::sources::audio::load_file;
use edgeid::voice::embed::cosine;
use edgeid::voice::{VoiceEmbedder, VoicePipeline};

use support::speech::{SENTENCES, say};

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
        let a1 = embed(say(dir.path(), a, SENTENCES[0], "a1.wav"));
        let a2 = embed(say(dir.path(), a, SENTENCES[1], "a2.wav"));
        let b1 = embed(say(dir.path(), b, SENTENCES[0], "b1.wav"));
        let same = cosine(&a1, &a2);
        let other = cosine(&a1, &b1);
        eprintln!("{a} vs {a}: {same:.3}; {a} vs {b}: {other:.3}");
        assert!(
            same > other + 0.02,
            "{a}: same voice {same}, other voice {other}"
        );
    }
}
