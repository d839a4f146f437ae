//! The voice bench's speaker: one synthetic voice (espeak-ng) saying
//! sentences of a small grammar, and a microphone that is a FIFO of raw
//! 16 kHz S16LE PCM written in real time, as `arecord -t raw` would.
//!
//! The probes are chosen before the daemon starts, so that the daemon's
//! replay rule (a probe within cosine 0.985 of a recent one or of an
//! enrolment clip is `presentation_attack`) never mistakes two different
//! sentences for one recording: each probe's embedding, made offline the
//! way the daemon makes it (the first 2.7 s of speech), stays below
//! [`DISTINCT_COSINE`] with the enrolment clips and every probe kept
//! before it, and the subject's voiceprint matches it with a margin. The
//! daemon remembers [`RECENT_PROBES_MAX`] probes, so a pool one larger
//! than that may be cycled through without a replay.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::broker::find_program;
use super::{DaemonBenchError, Feed};
use crate::decision::voice::{PROBE_TARGET_SPEECH_S, RECENT_PROBES_MAX, voiceprint};
use crate::eval::rng::Rng;
use crate::sources::audio::load_file;
use crate::voice::embed::cosine;
use crate::voice::{RATE, VoicePipeline};

/// The espeak-ng voice of the bench's subject.
pub const VOICE: &str = "en-us+m3";
/// Words a minute espeak-ng speaks at.
const WORDS_PER_MINUTE: &str = "150";
/// Two probes (or a probe and an enrolment clip) at least this alike are
/// not both used: the daemon's replay cosine (0.985) less a margin for the
/// differences between the offline embedding and the daemon's (level
/// normalisation over a different stretch of audio).
pub const DISTINCT_COSINE: f32 = 0.97;
/// A probe is used only when the voiceprint matches it by this much over
/// the threshold (the bench measures the accept path).
const MATCH_MARGIN: f32 = 0.03;
/// Enrolment clips, two sentences each (about 8 s of speech each; the
/// daemon's enrolment needs 10 s in all).
const ENROL_CLIPS: usize = 3;
/// The most sentences synthesised per probe wanted before giving up.
const TRIES_PER_PROBE: usize = 4;
/// A probe starts this long after its request is published: the daemon
/// only listens to audio captured after the request arrived, in chunks of
/// 100 ms.
pub const SPEAK_AFTER: Duration = Duration::from_millis(200);
/// Audio written to the FIFO at a time.
const PIECE: Duration = Duration::from_millis(20);
const PIECE_BYTES: usize = RATE / 50 * 2;

/// Whether `espeak-ng` can be found.
pub fn espeak_available() -> bool {
    find_program("espeak-ng").is_some()
}

/// Sentences of a small grammar, the same every run (fixed seed): each
/// about 4 s spoken, different words every time.
pub struct Sentences {
    rng: Rng,
}

impl Default for Sentences {
    fn default() -> Self {
        Self { rng: Rng::new(1) }
    }
}

impl Sentences {
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.rng.next_u64() % words.len() as u64) as usize]
    }
}

impl Iterator for Sentences {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        const WHO: [&str; 12] = [
            "Alice",
            "Robert",
            "the manager",
            "my colleague",
            "the driver",
            "our guest",
            "the nurse",
            "Peter",
            "Maria",
            "the engineer",
            "the caretaker",
            "a visitor",
        ];
        const DID: [&str; 12] = [
            "opened",
            "closed",
            "painted",
            "carried",
            "checked",
            "cleaned",
            "moved",
            "locked",
            "found",
            "repaired",
            "measured",
            "delivered",
        ];
        const WHAT: [&str; 12] = [
            "old", "green", "heavy", "narrow", "wooden", "broken", "quiet", "bright", "small",
            "empty", "yellow", "tall",
        ];
        const THING: [&str; 12] = [
            "door", "window", "cabinet", "ladder", "box", "gate", "table", "cupboard", "bicycle",
            "printer", "lamp", "trolley",
        ];
        const WHERE: [&str; 12] = [
            "near the station",
            "in the basement",
            "behind the library",
            "on the third floor",
            "next to the river",
            "at the north entrance",
            "in the garden",
            "by the loading dock",
            "under the bridge",
            "beside the kitchen",
            "across the car park",
            "in the east wing",
        ];
        const WHEN: [&str; 12] = [
            "this morning",
            "yesterday evening",
            "before lunch",
            "after the meeting",
            "on Monday",
            "at half past nine",
            "late last night",
            "during the storm",
            "last week",
            "an hour ago",
            "on Friday afternoon",
            "before the holidays",
        ];
        Some(format!(
            "{} {} the {} {} {} {}.",
            self.pick(&WHO),
            self.pick(&DID),
            self.pick(&WHAT),
            self.pick(&THING),
            self.pick(&WHERE),
            self.pick(&WHEN)
        ))
    }
}

/// `text` said by espeak-ng's `voice` into the WAV file `path`.
pub fn synthesise(voice: &str, text: &str, path: &Path) -> Result<(), DaemonBenchError> {
    let program = find_program("espeak-ng").ok_or(DaemonBenchError::NoEspeak)?;
    let out = Command::new(&program)
        .args(["-v", voice, "-s", WORDS_PER_MINUTE, "-w"])
        .arg(path)
        .arg(text)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| DaemonBenchError::Speech(format!("{}: {e}", program.display())))?;
    if !out.status.success() {
        return Err(DaemonBenchError::Speech(format!(
            "espeak-ng -v {voice} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The bench subject's speech: enrolment clips on disk, probes in memory.
pub struct Speech {
    pub voice: &'static str,
    /// WAV files to enrol (about 8 s of speech each).
    pub enrol_files: Vec<PathBuf>,
    /// 16 kHz mono probes, each a different sentence.
    pub probes: Vec<Vec<f32>>,
    /// Sentences synthesised for the probes (kept or not).
    pub tried: usize,
}

impl Speech {
    /// What the bench said, for the report.
    pub fn describe(&self) -> String {
        format!(
            "espeak-ng voice {}: {} enrolment clips; {} probe sentences, chosen from {} so that no two are alike enough to be called a replay (cosine < {DISTINCT_COSINE}) and each matches the voiceprint",
            self.voice,
            self.enrol_files.len(),
            self.probes.len(),
            self.tried
        )
    }
}

/// Synthesises the enrolment clips and up to `want` probes into `dir`,
/// the probes chosen as the module says; `threshold` is the voice model's
/// decision threshold. `tick` is called after each probe sentence tried.
pub fn prepare_speech(
    dir: &Path,
    pipeline: &VoicePipeline,
    threshold: f32,
    want: usize,
    tick: &dyn Fn(),
) -> Result<Speech, DaemonBenchError> {
    std::fs::create_dir_all(dir)?;
    let mut sentences = Sentences::default();
    let mut enrol_files = Vec::new();
    let mut clips = Vec::new();
    for i in 0..ENROL_CLIPS {
        let text = format!(
            "{} {}",
            sentences.next().unwrap_or_default(),
            sentences.next().unwrap_or_default()
        );
        let path = dir.join(format!("enrol-{i}.wav"));
        synthesise(VOICE, &text, &path)?;
        let clip = load_file(&path, 60.0).map_err(|e| DaemonBenchError::Speech(e.to_string()))?;
        let print = pipeline
            .embed(&clip.samples, 1.0)
            .map_err(|e| DaemonBenchError::Speech(format!("{}: {e}", path.display())))?;
        clips.push(print.embedding);
        enrol_files.push(path);
    }
    let print = voiceprint(clips.iter().map(Vec::as_slice))
        .ok_or_else(|| DaemonBenchError::Speech("no enrolment clip".into()))?;
    let mut kept: Vec<Vec<f32>> = Vec::new();
    let mut probes = Vec::new();
    let mut tried = 0;
    let path = dir.join("probe.wav");
    while probes.len() < want && tried < want * TRIES_PER_PROBE {
        tried += 1;
        let text = sentences.next().unwrap_or_default();
        synthesise(VOICE, &text, &path)?;
        let clip = load_file(&path, 60.0).map_err(|e| DaemonBenchError::Speech(e.to_string()))?;
        tick();
        // As the daemon embeds what it heard: the first 2.7 s of speech.
        let mut speech = VoicePipeline::speech(&clip.samples);
        let needed = (PROBE_TARGET_SPEECH_S * RATE as f64) as usize;
        if speech.len() < needed {
            continue;
        }
        speech.truncate(needed);
        let e = pipeline
            .embed_speech(&speech)
            .map_err(|e| DaemonBenchError::Speech(e.to_string()))?
            .embedding;
        let alike = clips
            .iter()
            .chain(&kept)
            .map(|k| cosine(k, &e))
            .fold(f32::NEG_INFINITY, f32::max);
        if alike < DISTINCT_COSINE && cosine(&print, &e) >= threshold + MATCH_MARGIN {
            kept.push(e);
            probes.push(clip.samples);
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(Speech {
        voice: VOICE,
        enrol_files,
        probes,
        tried,
    })
}

/// Probes needed so that `requests` never repeat one the daemon still
/// remembers.
pub fn probes_wanted(requests: usize) -> usize {
    requests.clamp(1, RECENT_PROBES_MAX + 1)
}

/// 16 kHz samples as S16LE bytes.
pub fn s16le(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect()
}

/// What the speaker is saying.
struct Line {
    pcm: Arc<Vec<u8>>,
    from: Instant,
    at: usize,
}

struct Shared {
    stop: AtomicBool,
    line: Mutex<Option<Line>>,
}

impl Shared {
    fn line(&self) -> MutexGuard<'_, Option<Line>> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes 16 kHz mono S16LE into a FIFO in real time, 20 ms at a time:
/// silence, or the line it was given to say. A reader that is not there
/// yet (or went away) is waited for; audio the pipe has no room for is
/// dropped, as a microphone's would be.
pub struct Speaker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Speaker {
    pub fn start(fifo: &Path) -> Result<Self, DaemonBenchError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            line: Mutex::new(None),
        });
        let thread_shared = Arc::clone(&shared);
        let fifo = fifo.to_owned();
        let thread = std::thread::Builder::new()
            .name("edgeid-bench-speaker".into())
            .spawn(move || speak(&fifo, &thread_shared))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Says `pcm` from `from` on (what it was saying is cut off).
    pub fn say(&self, pcm: Arc<Vec<u8>>, from: Instant) {
        *self.shared.line() = Some(Line { pcm, from, at: 0 });
    }

    /// Falls silent.
    pub fn hush(&self) {
        *self.shared.line() = None;
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn speak(fifo: &Path, shared: &Shared) {
    use std::os::unix::fs::OpenOptionsExt;
    while !shared.stop.load(Ordering::Relaxed) {
        // Non-blocking: opening blocks no thread while the daemon has not
        // opened its end (ENXIO), and a full pipe drops audio.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(fifo);
        match file {
            Ok(file) => write_pieces(file, shared),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Writes until the reader goes away or the speaker stops.
fn write_pieces(mut file: File, shared: &Shared) {
    let mut due = Instant::now();
    let mut piece = vec![0u8; PIECE_BYTES];
    while !shared.stop.load(Ordering::Relaxed) {
        due += PIECE;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_secs(1) {
            // Far behind (a stalled machine): keep real time from here.
            due = now;
        }
        piece.fill(0);
        {
            let mut line = shared.line();
            if let Some(l) = line.as_mut().filter(|l| Instant::now() >= l.from) {
                let end = (l.at + PIECE_BYTES).min(l.pcm.len());
                piece[..end - l.at].copy_from_slice(&l.pcm[l.at..end]);
                l.at = end;
                if end == l.pcm.len() {
                    *line = None;
                }
            }
        }
        match file.write(&piece) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The voice bench's feed: probe `i` is said [`SPEAK_AFTER`] its request
/// was published, and cut off when its verdict is in.
pub struct VoiceFeed {
    pub speaker: Speaker,
    pub probes: Vec<Arc<Vec<u8>>>,
}

impl Feed for VoiceFeed {
    fn request_sent(&self, index: usize, at: Instant) {
        if let Some(pcm) = self.probes.get(index % self.probes.len().max(1)) {
            self.speaker.say(Arc::clone(pcm), at + SPEAK_AFTER);
        }
    }

    fn request_done(&self, _index: usize) {
        self.speaker.hush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_reproducible_and_vary() {
        let a: Vec<String> = Sentences::default().take(50).collect();
        let b: Vec<String> = Sentences::default().take(50).collect();
        assert_eq!(a, b);
        let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), 50, "{a:?}");
        assert!(a.iter().all(|s| s.split(' ').count() >= 10), "{a:?}");
    }

    #[test]
    fn the_pool_outlasts_the_daemons_memory_of_probes() {
        assert_eq!(probes_wanted(3), 3);
        assert_eq!(probes_wanted(1000), RECENT_PROBES_MAX + 1);
        assert_eq!(probes_wanted(0), 1);
    }
}
