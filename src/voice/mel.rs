//! The mel spectrogram Resemblyzer's encoder was trained on, as librosa
//! 0.10 computes `melspectrogram(y, sr=16000, n_fft=400, hop_length=160,
//! n_mels=40)`: periodic Hann window, frames centred (200 zeros padded
//! either side), power spectrum (|X|², not log), 40 Slaney-scale triangular
//! filters from 0 to 8 kHz with Slaney (area) normalisation. The FFT runs in
//! f64 (realfft) so the result matches the reference to well under 1e-3.

use std::sync::Arc;

use ndarray::Array2;
use realfft::{RealFftPlanner, RealToComplex};

use super::RATE;
use super::partials::HOP;

pub const N_FFT: usize = 400;
pub const N_MELS: usize = 40;
const N_BINS: usize = N_FFT / 2 + 1;

/// The STFT plan, window and filterbank, built once and shared.
pub struct MelFrontEnd {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    /// [N_MELS, N_BINS] Slaney filterbank.
    filters: Array2<f64>,
    /// Each band's bins from its first to its last non-zero weight: the
    /// triangles span a few bins each, and the zero weights outside add
    /// exactly nothing (+0.0) to the sum, so skipping them changes no bit.
    support: Vec<std::ops::Range<usize>>,
}

impl Default for MelFrontEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontEnd {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        // Periodic Hann (scipy get_window('hann', N, fftbins=True)).
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .collect();
        let filters = slaney_filterbank();
        let support = filters
            .rows()
            .into_iter()
            .map(|w| {
                let first = w.iter().position(|&v| v != 0.0).unwrap_or(0);
                let last = w.iter().rposition(|&v| v != 0.0).unwrap_or(0);
                first..(last + 1).max(first)
            })
            .collect();
        Self {
            fft,
            window,
            filters,
            support,
        }
    }

    /// Mel frames of `wav` (16 kHz): [1 + len / 160, 40], row = one 10 ms frame.
    pub fn compute(&self, wav: &[f32]) -> Array2<f32> {
        let pad = N_FFT / 2;
        let n_frames = 1 + wav.len() / HOP;
        let mut out = Array2::<f32>::zeros((n_frames, N_MELS));
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; N_BINS];
        for (t, mut row) in out.rows_mut().into_iter().enumerate() {
            let start = (t * HOP) as isize - pad as isize;
            for (k, v) in input.iter_mut().enumerate() {
                let i = start + k as isize;
                let x = usize::try_from(i)
                    .ok()
                    .and_then(|i| wav.get(i))
                    .copied()
                    .unwrap_or(0.0);
                *v = f64::from(x) * self.window[k];
            }
            // Lengths come from the plan itself, so the call cannot fail.
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, v) in row.iter_mut().enumerate() {
                let bins = self.support[m].clone();
                let f = self.filters.row(m);
                let w = f.slice(ndarray::s![bins.clone()]);
                *v = w.iter().zip(&power[bins]).map(|(w, p)| w * p).sum::<f64>() as f32;
            }
        }
        out
    }
}

fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// librosa.filters.mel(sr=16000, n_fft=400, n_mels=40, fmin=0, fmax=8000,
/// htk=False, norm='slaney').
fn slaney_filterbank() -> Array2<f64> {
    let fmax = RATE as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|k| k as f64 * fmax / (N_BINS - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let mut w = Array2::<f64>::zeros((N_MELS, N_BINS));
    for m in 0..N_MELS {
        let (left, centre, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            w[[m, k]] = lower.min(upper).max(0.0) * enorm;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lands_in_the_band_that_holds_its_frequency() {
        let mel = MelFrontEnd::new();
        let tone: Vec<f32> = (0..16_000)
            .map(|i| 0.1 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let frames = mel.compute(&tone);
        assert_eq!(frames.dim(), (101, N_MELS));
        let mid = frames.row(50);
        let best = (0..N_MELS)
            .max_by(|&a, &b| mid[a].total_cmp(&mid[b]))
            .unwrap_or(0);
        // 1 kHz is mel 15 on the Slaney scale; band m is centred on mel_f[m + 1].
        let centre = |m: usize| mel_to_hz(hz_to_mel(8000.0) * (m + 1) as f64 / 41.0);
        assert!((centre(best) - 1000.0).abs() < 150.0, "band {best}");
        assert!(mel.compute(&vec![0.0; 1600]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn summing_only_the_bands_support_changes_no_bit() {
        let mel = MelFrontEnd::new();
        // Every band has a support, narrower than the spectrum.
        for (m, r) in mel.support.iter().enumerate() {
            assert!(!r.is_empty() && r.len() < N_BINS / 2, "band {m}: {r:?}");
        }
        // Noise and a chirp, against the dense product over all bins.
        let mut state = 1u32;
        let wav: Vec<f32> = (0..8000)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 8) as f32 / (1 << 24) as f32 - 0.5;
                let t = i as f32 / 16_000.0;
                0.01 * noise + 0.2 * (2.0 * std::f32::consts::PI * (200.0 + 3000.0 * t) * t).sin()
            })
            .collect();
        let sparse = mel.compute(&wav);
        let dense = MelFrontEnd {
            support: vec![0..N_BINS; N_MELS],
            ..MelFrontEnd::new()
        }
        .compute(&wav);
        assert!(
            sparse
                .iter()
                .zip(&dense)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }
}
