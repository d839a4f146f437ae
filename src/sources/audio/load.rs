//! Reads a whole source to 16 kHz mono, under a length limit checked before
//! and while reading: a one-hour file is refused from its header, a
//! headerless stream as soon as it passes the limit, never held whole.

use std::path::Path;

use super::{AudioError, AudioFile, AudioSource, To16kMono, VOICE_RATE};

/// A clip at 16 kHz mono and what it came from.
#[derive(Debug, Clone)]
pub struct Clip {
    pub samples: Vec<f32>,
    /// The source's own format, for reports ("48000 Hz 2 ch").
    pub source: String,
}

impl Clip {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(VOICE_RATE)
    }
}

/// Opens a WAV or FLAC file and reads it to 16 kHz mono.
pub fn load_file(path: &Path, limit_s: f64) -> Result<Clip, AudioError> {
    let mut file = AudioFile::open(path)?;
    load_clip(&mut file, limit_s)
}

/// Reads `source` to its end (at most `limit_s` seconds) at 16 kHz mono.
pub fn load_clip(source: &mut dyn AudioSource, limit_s: f64) -> Result<Clip, AudioError> {
    let (rate, channels) = source.format();
    let what = source.describe();
    let too_long = || AudioError::TooLong {
        what: what.clone(),
        limit_s,
    };
    let limit_frames = (limit_s * f64::from(rate)).ceil() as u64;
    if source.declared_frames().is_some_and(|n| n > limit_frames) {
        return Err(too_long());
    }
    let mut resampler = To16kMono::new(rate, channels)?;
    let mut samples = Vec::new();
    let mut frames = 0u64;
    while let Some(chunk) = source.next_chunk()? {
        frames += chunk.frames() as u64;
        if frames > limit_frames {
            return Err(too_long());
        }
        samples.extend(resampler.push(&chunk)?);
    }
    samples.extend(resampler.finish()?);
    if samples.is_empty() {
        return Err(AudioError::Empty { what });
    }
    Ok(Clip {
        samples,
        source: what,
    })
}
