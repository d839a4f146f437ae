//! Synthetic speakers: espeak-ng voices saying sentences into WAV files
//! (22.05 kHz mono), so voice tests need no recordings.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Sentences of 4-5 s each.
pub const SENTENCES: [&str; 5] = [
    "Please open the side door, I have an appointment with the office manager at ten.",
    "My badge stopped working this morning, so I am using my voice to get in today.",
    "The quick brown fox jumps over the lazy dog near the river bank every single morning.",
    "I would like to collect the parcel that was delivered to reception yesterday afternoon.",
    "We are meeting in the second floor conference room after lunch to review the budget.",
];

/// `voice` (an espeak-ng voice such as "en-us+m3") saying `text` into
/// `dir/name`.
pub fn say(dir: &Path, voice: &str, text: &str, name: &str) -> PathBuf {
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

/// `voice` saying sentences `range` of [`SENTENCES`], one file each.
pub fn clips(dir: &Path, voice: &str, range: std::ops::Range<usize>) -> Vec<PathBuf> {
    range
        .map(|i| say(dir, voice, SENTENCES[i], &format!("{voice}-{i}.wav")))
        .collect()
}

/// A WAV file as raw S16LE PCM at 16 kHz mono (what a microphone FIFO
/// carries), read and resampled by edgeid's own audio source.
pub fn pcm16k(wav: &Path) -> Vec<u8> {
    let clip = edgeid::sources::audio::load_file(wav, 60.0).expect("read wav");
    clip.samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect()
}
