//! Raw signed 16-bit little-endian PCM on a byte stream (stdin, a FIFO, a
//! file) at a configured rate and channel count, so `arecord -t raw` or a
//! GStreamer pipeline (`... ! audio/x-raw,format=S16LE ! fdsink`) can feed
//! edgeid. Raw PCM has no framing: a stream that ends mid-frame keeps its
//! whole frames and drops only the incomplete one (logged).

use std::io::{ErrorKind, Read};

use super::{AudioChunk, AudioError, AudioSource};

/// Bytes read per chunk: 100 ms of 16 kHz mono.
const CHUNK_BYTES: usize = 3200;

pub struct PcmStream<R> {
    what: String,
    reader: R,
    rate: u32,
    channels: u16,
    carry: Vec<u8>,
    ended: bool,
}

impl<R: Read + Send> PcmStream<R> {
    pub fn new(
        what: impl Into<String>,
        reader: R,
        rate: u32,
        channels: u16,
    ) -> Result<Self, AudioError> {
        let what = what.into();
        if !(1000..=384_000).contains(&rate) || channels == 0 || channels > 32 {
            return Err(AudioError::Unsupported {
                what,
                detail: format!("{rate} Hz x {channels} channels"),
            });
        }
        Ok(Self {
            what,
            reader,
            rate,
            channels,
            carry: Vec::new(),
            ended: false,
        })
    }
}

impl<R: Read + Send> AudioSource for PcmStream<R> {
    fn next_chunk(&mut self) -> Result<Option<AudioChunk>, AudioError> {
        let frame = 2 * usize::from(self.channels);
        while !self.ended && self.carry.len() < CHUNK_BYTES.max(frame) {
            let mut buf = [0u8; CHUNK_BYTES];
            match self.reader.read(&mut buf) {
                Ok(0) => self.ended = true,
                Ok(n) => self.carry.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(AudioError::Read {
                        what: self.what.clone(),
                        error: source,
                    });
                }
            }
        }
        let whole = self.carry.len() / frame * frame;
        if whole == 0 {
            if !self.carry.is_empty() {
                tracing::warn!(stream = %self.what, bytes = self.carry.len(), "stream ended mid-frame; the incomplete frame is dropped");
                self.carry.clear();
            }
            return Ok(None);
        }
        let samples = self.carry[..whole]
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        self.carry.drain(..whole);
        Ok(Some(AudioChunk {
            samples,
            rate: self.rate,
            channels: self.channels,
            captured_at: None,
        }))
    }

    fn format(&self) -> (u32, u16) {
        (self.rate, self.channels)
    }

    fn describe(&self) -> String {
        format!(
            "pcm s16le {} {} Hz {} ch",
            self.what, self.rate, self.channels
        )
    }
}
