//! One clip through every voice stage: normalise, trim to speech, mel,
//! partials, embedding. The speech duration after the trim is part of the
//! result, so enrolment and verification can refuse too little speech with
//! a reason rather than match on noise.

use std::time::{Duration, Instant};

use super::embed::VoiceEmbedder;
use super::mel::MelFrontEnd;
use super::partials::{padded_len, partial_starts};
use super::{RATE, level, vad};
use crate::infer::InferError;

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// Nothing in the clip passed the voice activity detector.
    #[error("no speech in the audio ({seconds:.1} s of audio, all silence or noise)")]
    NoSpeech { seconds: f64 },
    /// Some speech, less than the caller needs.
    #[error("too little speech: {speech_s:.2} s, at least {min_s:.2} s needed")]
    TooShort { speech_s: f64, min_s: f64 },
    #[error(transparent)]
    Infer(#[from] InferError),
}

/// A clip's speaker embedding and how it was made.
#[derive(Debug, Clone)]
pub struct VoicePrint {
    pub embedding: Vec<f32>,
    /// Seconds of speech the embedding was made from (after the trim).
    pub speech_s: f64,
    pub partials: usize,
    pub timings: VoiceTimings,
}

/// Time spent in each stage, for `edgeid bench`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VoiceTimings {
    pub vad: Duration,
    pub mel: Duration,
    pub embed: Duration,
}

pub struct VoicePipeline {
    mel: MelFrontEnd,
    embedder: VoiceEmbedder,
}

impl VoicePipeline {
    pub fn new(embedder: VoiceEmbedder) -> Self {
        Self {
            mel: MelFrontEnd::new(),
            embedder,
        }
    }

    pub fn embedder(&self) -> &VoiceEmbedder {
        &self.embedder
    }

    /// Normalised, trimmed speech of a 16 kHz mono clip (Resemblyzer's
    /// `preprocess_wav` after resampling).
    pub fn speech(samples: &[f32]) -> Vec<f32> {
        let mut wav = samples.to_vec();
        level::normalise_volume(&mut wav);
        vad::trim_silences(&wav)
    }

    /// The embedding of a 16 kHz mono clip with at least `min_speech_s`
    /// seconds of speech.
    pub fn embed(&self, samples: &[f32], min_speech_s: f64) -> Result<VoicePrint, VoiceError> {
        let t0 = Instant::now();
        let speech = Self::speech(samples);
        let vad_time = t0.elapsed();
        let speech_s = speech.len() as f64 / RATE as f64;
        if speech.is_empty() {
            return Err(VoiceError::NoSpeech {
                seconds: samples.len() as f64 / RATE as f64,
            });
        }
        if speech_s < min_speech_s {
            return Err(VoiceError::TooShort {
                speech_s,
                min_s: min_speech_s,
            });
        }
        let mut print = self.embed_speech(&speech)?;
        print.timings.vad = vad_time;
        Ok(print)
    }

    /// The embedding of speech already normalised and trimmed.
    pub fn embed_speech(&self, speech: &[f32]) -> Result<VoicePrint, InferError> {
        let t0 = Instant::now();
        let starts = partial_starts(speech.len());
        let mut wav = speech.to_vec();
        wav.resize(padded_len(speech.len()), 0.0);
        let mels = self.mel.compute(&wav);
        let t1 = Instant::now();
        let embedding = self.embedder.embed(&mels, &starts)?;
        Ok(VoicePrint {
            embedding,
            speech_s: speech.len() as f64 / RATE as f64,
            partials: starts.len(),
            timings: VoiceTimings {
                vad: Duration::ZERO,
                mel: t1 - t0,
                embed: t1.elapsed(),
            },
        })
    }

    /// The mel frames Resemblyzer's `embed_utterance` feeds the network for
    /// this speech (padded to whole partials).
    pub fn mels(&self, speech: &[f32]) -> ndarray::Array2<f32> {
        let mut wav = speech.to_vec();
        wav.resize(padded_len(speech.len()), 0.0);
        self.mel.compute(&wav)
    }
}
