//! Any rate and channel count to 16 kHz mono: channels are averaged, then a
//! band-limited FFT resampler (rubato) changes the rate. Streaming: chunks
//! go in as they come; the resampler's delay is removed at the start and its
//! tail flushed at the end, so the output holds exactly
//! round(input frames x 16000 / rate) samples, none dropped, none invented.

use rubato::{FftFixedIn, Resampler};

use super::{AudioChunk, AudioError, VOICE_RATE};

/// Input frames per resampler call (about 20 ms at 48 kHz).
const BLOCK: usize = 1024;

pub struct To16kMono {
    rate: u32,
    channels: u16,
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    frames_in: u64,
    frames_out: u64,
    /// Output samples still to discard (the resampler's delay).
    skip: usize,
}

impl To16kMono {
    pub fn new(rate: u32, channels: u16) -> Result<Self, AudioError> {
        let inner = if rate == VOICE_RATE {
            None
        } else {
            let r = FftFixedIn::<f32>::new(rate as usize, VOICE_RATE as usize, BLOCK, 2, 1)
                .map_err(|source| AudioError::ResamplerInit {
                    from: rate,
                    to: VOICE_RATE,
                    error: source,
                })?;
            Some(r)
        };
        let skip = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self {
            rate,
            channels: channels.max(1),
            inner,
            pending: Vec::new(),
            frames_in: 0,
            frames_out: 0,
            skip,
        })
    }

    /// Resamples one chunk; returns the 16 kHz mono samples ready so far.
    /// A chunk of another format than the one given to `new` is refused.
    pub fn push(&mut self, chunk: &AudioChunk) -> Result<Vec<f32>, AudioError> {
        if chunk.rate != self.rate || chunk.channels.max(1) != self.channels {
            return Err(AudioError::Unsupported {
                what: "audio stream".into(),
                detail: format!(
                    "format changed mid-stream from {} Hz x {} to {} Hz x {}",
                    self.rate, self.channels, chunk.rate, chunk.channels
                ),
            });
        }
        let ch = usize::from(self.channels);
        let mono = chunk
            .samples
            .chunks_exact(ch)
            .map(|f| f.iter().sum::<f32>() / ch as f32);
        let before = self.pending.len();
        self.pending.extend(mono);
        self.frames_in += (self.pending.len() - before) as u64;
        let mut out = Vec::new();
        let Some(r) = self.inner.as_mut() else {
            out.append(&mut self.pending);
            self.frames_out += out.len() as u64;
            return Ok(out);
        };
        while self.pending.len() >= r.input_frames_next() {
            let n = r.input_frames_next();
            let res =
                r.process(&[&self.pending[..n]], None)
                    .map_err(|source| AudioError::Resample {
                        from: self.rate,
                        to: VOICE_RATE,
                        error: source,
                    })?;
            self.pending.drain(..n);
            out.extend_from_slice(&res[0]);
        }
        Ok(self.emit(out, u64::MAX))
    }

    /// Flushes the resampler: the last samples of the stream.
    pub fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        let expected = (self.frames_in * u64::from(VOICE_RATE) + u64::from(self.rate) / 2)
            / u64::from(self.rate);
        let Some(r) = self.inner.as_mut() else {
            return Ok(Vec::new());
        };
        let err = |source| AudioError::Resample {
            from: self.rate,
            to: VOICE_RATE,
            error: source,
        };
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let res = r
                .process_partial(Some(&[&self.pending[..]]), None)
                .map_err(err)?;
            self.pending.clear();
            out.extend_from_slice(&res[0]);
        }
        // Zeros through the filter until its delay has come out.
        let mut guard = 0;
        while self.frames_out + (out.len().saturating_sub(self.skip) as u64) < expected
            && guard < 64
        {
            let res = r.process_partial(None::<&[&[f32]]>, None).map_err(err)?;
            out.extend_from_slice(&res[0]);
            guard += 1;
        }
        Ok(self.emit(out, expected))
    }

    /// Drops the delay still owed, caps the total at `limit` frames.
    fn emit(&mut self, mut out: Vec<f32>, limit: u64) -> Vec<f32> {
        let skip = self.skip.min(out.len());
        out.drain(..skip);
        self.skip -= skip;
        let room = limit.saturating_sub(self.frames_out);
        if (out.len() as u64) > room {
            out.truncate(room as usize);
        }
        self.frames_out += out.len() as u64;
        out
    }
}
