//! Synthetic templates: deterministic pseudo-random unit vectors standing in
//! for embeddings, for the gallery's tests and the gallery benchmark
//! (`eval::gallery_bench`, `benches/gallery.rs`). Compiled only for tests
//! and with the `eval` feature; a device build has no use for them.

/// `n` unit vectors of `dim` components, the same for the same `seed`
/// (xorshift; speed matters, not quality).
pub fn random_templates(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..dim {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
        }
        let norm = out[start..]
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::EPSILON);
        out[start..].iter_mut().for_each(|x| *x /= norm);
    }
    out
}
