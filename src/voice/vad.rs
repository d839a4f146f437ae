//! Voice activity and the silence trim of Resemblyzer's front end.
//!
//! The trim is Resemblyzer's `trim_long_silences`: one voiced/unvoiced flag
//! per 30 ms window, a moving average over 8 windows rounded back to a
//! flag, dilated by 7 windows, and the unvoiced windows cut out, so a pause
//! longer than ~200 ms shrinks while speech keeps its edges.
//!
//! Resemblyzer takes its flags from webrtcvad (a C GMM detector); here they
//! come from an energy detector relative to the clip's own noise floor: a
//! window is voiced when its level is 9 dB above the clip's 10th-percentile
//! window level and above -55 dBFS (after normalisation to -30 dBFS). Why
//! not silero-vad: its ONNX loads in tract (the `op18_ifless` variant), but
//! it is a stateful three-input model (audio, rate, LSTM state) and the
//! inference trait runs one input; webrtcvad is C. The difference only
//! decides which pauses are cut; the golden test measures its effect on the
//! embedding (tests/voice_golden.rs).

use super::RATE;

/// Samples per VAD window (30 ms).
pub const WINDOW: usize = RATE * 30 / 1000;
const MOVING_AVERAGE: usize = 8;
const MAX_SILENCE: usize = 6;
const ABOVE_FLOOR_DB: f64 = 9.0;
const MIN_DBFS: f64 = -55.0;

/// Voiced flag per whole 30 ms window of `wav`.
pub fn voice_flags(wav: &[f32]) -> Vec<bool> {
    let levels: Vec<f64> = wav
        .chunks_exact(WINDOW)
        .map(|w| {
            let ms = w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / WINDOW as f64;
            10.0 * (ms + 1e-12).log10()
        })
        .collect();
    if levels.is_empty() {
        return Vec::new();
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f64::total_cmp);
    let floor = sorted[sorted.len() / 10];
    let threshold = (floor + ABOVE_FLOOR_DB).max(MIN_DBFS);
    levels.iter().map(|&l| l > threshold).collect()
}

/// Resemblyzer's mask: moving average (width 8, zero padded 3 before and 4
/// after), rounded half to even, then binary dilation by 7 windows.
pub fn speech_mask(flags: &[bool]) -> Vec<bool> {
    let n = flags.len();
    let (before, width) = ((MOVING_AVERAGE - 1) / 2, MOVING_AVERAGE);
    let smoothed: Vec<bool> = (0..n)
        .map(|i| {
            // Window i covers padded positions i..i+width, i.e. flags i-before..i-before+width.
            let lo = i.saturating_sub(before);
            let hi = (i + width - before).min(n);
            let count = flags[lo..hi].iter().filter(|&&f| f).count();
            // np.round: 4/8 = 0.5 rounds to 0 (half to even); > 4 of 8 is voiced.
            count * 2 > width
        })
        .collect();
    // scipy binary_dilation with a structure of 7 ones, centred (origin 0).
    let half = MAX_SILENCE.div_ceil(2);
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + (MAX_SILENCE + 1 - half)).min(n);
            smoothed[lo..hi].iter().any(|&f| f)
        })
        .collect()
}

/// The voiced part of `wav` (whole windows only; a tail shorter than one
/// window is dropped, as Resemblyzer does).
pub fn trim_silences(wav: &[f32]) -> Vec<f32> {
    let mask = speech_mask(&voice_flags(wav));
    wav.chunks_exact(WINDOW)
        .zip(&mask)
        .filter(|(_, keep)| **keep)
        .flat_map(|(w, _)| w.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_smooths_then_dilates_like_resemblyzer() {
        // One isolated voiced window is smoothed away entirely.
        let mut flags = vec![false; 40];
        flags[20] = true;
        assert!(speech_mask(&flags).iter().all(|&m| !m));
        // A run of 10 voiced windows survives and grows by the dilation.
        let mut flags = vec![false; 40];
        flags[10..20].iter_mut().for_each(|f| *f = true);
        let mask = speech_mask(&flags);
        let kept: Vec<usize> = (0..40).filter(|&i| mask[i]).collect();
        assert!(kept.len() > 10 && kept.len() < 20, "{kept:?}");
        assert!(mask[10] && mask[19] && !mask[0] && !mask[39]);
    }

    #[test]
    fn pauses_are_cut_and_silence_has_no_speech() {
        let tone =
            |n: usize| -> Vec<f32> { (0..n).map(|i| 0.05 * (i as f32 * 0.3).sin()).collect() };
        let mut wav = tone(16_000);
        wav.extend(vec![0.0; 32_000]);
        wav.extend(tone(16_000));
        let trimmed = trim_silences(&wav);
        assert!(
            trimmed.len() < 40_000 && trimmed.len() > 30_000,
            "{}",
            trimmed.len()
        );
        assert!(trim_silences(&vec![0.0; 48_000]).is_empty());
    }
}
