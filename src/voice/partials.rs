//! Where the partial utterances of a clip start: 160 mel frames (1.6 s)
//! every 77 frames (Resemblyzer's rate 1.3 per second), the last one kept
//! only if the clip covers at least 75 % of it; at least one partial.

/// Mel frames in one partial utterance (the embedder's input length).
pub const FRAMES: usize = 160;
/// Frames between partial starts: round((16000 / 1.3) / 160).
pub const STEP: usize = 77;
/// Samples per mel frame (10 ms hop).
pub const HOP: usize = 160;
const MIN_COVERAGE: f64 = 0.75;

/// Start frames of the partials for a clip of `n_samples`, as
/// `VoiceEncoder.compute_partial_slices` computes them.
pub fn partial_starts(n_samples: usize) -> Vec<usize> {
    let n_frames = (n_samples + 1).div_ceil(HOP);
    let steps = (n_frames + STEP + 1).saturating_sub(FRAMES).max(1);
    let mut starts: Vec<usize> = (0..steps).step_by(STEP).collect();
    if let Some(&last) = starts.last() {
        let coverage = (n_samples as f64 - (last * HOP) as f64) / (FRAMES * HOP) as f64;
        if coverage < MIN_COVERAGE && starts.len() > 1 {
            starts.pop();
        }
    }
    starts
}

/// Samples the clip must be padded to (with zeros) so every partial is whole.
pub fn padded_len(n_samples: usize) -> usize {
    let last = partial_starts(n_samples).last().copied().unwrap_or(0);
    n_samples.max((last + FRAMES) * HOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_follow_resemblyzer() {
        // 1 s: one partial, padded out to 1.6 s.
        assert_eq!(partial_starts(16_000), vec![0]);
        assert_eq!(padded_len(16_000), 25_600);
        // 3 s = 301 frames: starts 0, 77, 154 (154 covers (48000-24640)/25600 = 91 %).
        assert_eq!(partial_starts(48_000), vec![0, 77, 154]);
        // 2.9 s: the partial at 154 covers (46400-24640)/25600 = 85 %: kept.
        assert_eq!(partial_starts(46_400), vec![0, 77, 154]);
        // 2.6 s: (41600-24640)/25600 = 66 % < 75 %: dropped.
        assert_eq!(partial_starts(41_600), vec![0, 77]);
        assert_eq!(partial_starts(0), vec![0]);
    }
}
