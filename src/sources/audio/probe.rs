//! A microphone listened to for a moment, for `edgeid doctor`: is it
//! there, what format does it give, and is anything coming in (a muted or
//! unplugged capture path gives digital silence, which a level shows).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{AudioError, AudioSource, Microphone};
use crate::sources::capture::Backoff;

/// What a microphone gave over the listening time.
#[derive(Debug, Clone, Serialize)]
pub struct MicProbe {
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    /// Seconds of audio captured (frames / rate).
    pub seconds: f64,
    /// RMS level in dB relative to full scale; -inf for digital silence.
    pub rms_dbfs: f64,
    /// Largest absolute sample, 0..=1 (1 means clipping).
    pub peak: f32,
}

/// Opens `device` by name and captures for `listen`. A device that opens
/// but delivers nothing within `listen` plus a second is an error.
pub fn probe(device: &str, listen: Duration) -> Result<MicProbe, AudioError> {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
    };
    // A ring large enough for the whole listening time at any rate.
    let mic = Microphone::open(device, 4096, backoff)?;
    let (rate, channels) = mic.format();
    let start = Instant::now();
    let deadline = start + listen;
    let (mut frames, mut sum_sq, mut count, mut peak) = (0usize, 0f64, 0usize, 0f32);
    while Instant::now() < deadline
        || (frames == 0 && start.elapsed() < listen + Duration::from_secs(1))
    {
        let Some(chunk) = mic.next_timeout(Duration::from_millis(100)) else {
            continue;
        };
        frames += chunk.frames();
        count += chunk.samples.len();
        for &s in &chunk.samples {
            sum_sq += f64::from(s) * f64::from(s);
            peak = peak.max(s.abs());
        }
    }
    if frames == 0 {
        let status = mic.status();
        let why = status
            .last_error
            .unwrap_or_else(|| "no audio arrived".to_owned());
        return Err(AudioError::Microphone {
            device: device.to_owned(),
            detail: format!(
                "opened, but captured nothing in {:.1} s: {why}",
                listen.as_secs_f64() + 1.0
            ),
        });
    }
    Ok(MicProbe {
        device: device.to_owned(),
        rate,
        channels,
        seconds: frames as f64 / f64::from(rate.max(1)),
        rms_dbfs: 10.0 * (sum_sq / count.max(1) as f64).log10(),
        peak,
    })
}
