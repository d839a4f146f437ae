//! WAV and FLAC files through symphonia, decoded one packet at a time so a
//! long file is never held whole.
//!
//! A packet that fails to decode is skipped and counted (a damaged frame in
//! a FLAC stream); a file that ends early (truncated) simply ends: what was
//! decoded is kept. Anything that is not WAV or FLAC is a [`AudioError::Format`].

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{AudioChunk, AudioError, AudioSource};

pub struct AudioFile {
    path: PathBuf,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    rate: u32,
    channels: u16,
    frames: Option<u64>,
    bits: Option<u32>,
    /// Packets that failed to decode and were skipped.
    pub bad_packets: u64,
}

impl AudioFile {
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(|source| AudioError::Open {
            what: path.display().to_string(),
            error: source,
        })?;
        let format_err = |source| AudioError::Format {
            path: path.to_owned(),
            error: source,
        };
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(format_err)?;
        let reader = probed.format;
        let no_track = || AudioError::NoTrack {
            path: path.to_owned(),
        };
        let track = reader.default_track().ok_or_else(no_track)?;
        let params = &track.codec_params;
        let rate = params.sample_rate.ok_or_else(no_track)?;
        let channels = params.channels.map(|c| c.count()).ok_or_else(no_track)?;
        let channels = u16::try_from(channels)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(no_track)?;
        let frames = params.n_frames;
        let bits = params.bits_per_sample;
        let id = track.id;
        let decoder = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .map_err(format_err)?;
        Ok(Self {
            path: path.to_owned(),
            reader,
            decoder,
            track: id,
            rate,
            channels,
            frames,
            bits,
            bad_packets: 0,
        })
    }
}

impl AudioSource for AudioFile {
    fn next_chunk(&mut self) -> Result<Option<AudioChunk>, AudioError> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(p) => p,
                // The end of the file, or a truncated one: what was read stands.
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(SymError::ResetRequired) => return Ok(None),
                Err(source) => {
                    return Err(AudioError::Format {
                        path: self.path.clone(),
                        error: source,
                    });
                }
            };
            if packet.track_id() != self.track {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    let mut out = SampleBuffer::<f32>::new(buf.capacity() as u64, *buf.spec());
                    out.copy_interleaved_ref(buf);
                    if out.samples().is_empty() {
                        continue;
                    }
                    return Ok(Some(AudioChunk {
                        samples: out.samples().to_vec(),
                        rate: self.rate,
                        channels: self.channels,
                        captured_at: None,
                    }));
                }
                Err(SymError::DecodeError(e)) => {
                    self.bad_packets += 1;
                    tracing::warn!(file = %self.path.display(), "skipped an undecodable packet: {e}");
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(source) => {
                    return Err(AudioError::Format {
                        path: self.path.clone(),
                        error: source,
                    });
                }
            }
        }
    }

    fn format(&self) -> (u32, u16) {
        (self.rate, self.channels)
    }

    fn declared_frames(&self) -> Option<u64> {
        self.frames
    }

    fn describe(&self) -> String {
        let bits = self.bits.map(|b| format!(" {b}-bit")).unwrap_or_default();
        format!(
            "{} {} Hz {} ch{bits}",
            self.path.display(),
            self.rate,
            self.channels
        )
    }
}
