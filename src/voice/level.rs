//! Volume normalisation: scale the clip so its RMS is -30 dBFS, only ever
//! up (a loud clip is left alone, as Resemblyzer does). Digital silence
//! (RMS 0) is returned unchanged rather than multiplied by infinity.

/// Resemblyzer's `audio_norm_target_dBFS`.
pub const TARGET_DBFS: f64 = -30.0;

/// RMS level of `wav` in dB relative to full scale; -inf for silence.
pub fn dbfs(wav: &[f32]) -> f64 {
    if wav.is_empty() {
        return f64::NEG_INFINITY;
    }
    let mean_sq = wav.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / wav.len() as f64;
    10.0 * mean_sq.log10()
}

/// Raises `wav` to [`TARGET_DBFS`] if it is quieter; returns the gain in dB.
pub fn normalise_volume(wav: &mut [f32]) -> f64 {
    let level = dbfs(wav);
    let change = TARGET_DBFS - level;
    if !change.is_finite() || change <= 0.0 {
        return 0.0;
    }
    let gain = 10f64.powf(change / 20.0) as f32;
    wav.iter_mut().for_each(|x| *x *= gain);
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_clips_are_raised_loud_ones_and_silence_left_alone() {
        let mut quiet: Vec<f32> = (0..1600).map(|i| 0.001 * (i as f32 * 0.1).sin()).collect();
        assert!(normalise_volume(&mut quiet) > 0.0);
        assert!((dbfs(&quiet) - TARGET_DBFS).abs() < 1e-3);
        let mut loud: Vec<f32> = (0..1600).map(|i| 0.5 * (i as f32 * 0.1).sin()).collect();
        let before = loud.clone();
        assert_eq!(normalise_volume(&mut loud), 0.0);
        assert_eq!(loud, before);
        let mut silent = vec![0.0f32; 1600];
        assert_eq!(normalise_volume(&mut silent), 0.0);
        assert!(silent.iter().all(|&x| x == 0.0));
    }
}
