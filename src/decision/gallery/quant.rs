//! The quantised copy of the gallery (one byte per component, a quarter of
//! the f32 matrix's memory traffic) for the first 1:N pass, and the error
//! bound that lets the second, exact pass return exactly the f32 result.
//!
//! A row `x` is stored as i8 codes `q` and one scale `s` (`x̂ = s·q`,
//! `q_i = round(x_i / s)`, `s = max|x_i| / 127`); the probe `p` as i16 codes
//! `u` and a scale `t` (`p̂ = t·u`). The first pass computes the integer
//! `Q = q·u` (i8 × i16 → i32: `pmaddwd` on x86-64 SSE2, `smlal` on aarch64
//! NEON, from plain loops) and the estimate `a = s·t·Q`, which is `x̂·p̂`
//! up to one f64 rounding.
//!
//! The bound, for `dot(x, p)` the f32 value [`super::dot`] returns:
//!
//! ```text
//! |dot(x,p) − a| ≤ |dot(x,p) − x·p| + |x·p − x̂·p̂| + |x̂·p̂ − a|
//! x·p − x̂·p̂ = (x − x̂)·p + x̂·(p − p̂)
//! |(x − x̂)·p|   ≤ ‖x − x̂‖·‖p‖ = e_x·‖p‖                  (Cauchy–Schwarz)
//! |x̂·(p − p̂)|   ≤ ‖x̂‖·‖p − p̂‖ ≤ (‖x‖ + e_x)·e_p
//! |dot − x·p|   ≤ γ_d·Σ|x_i·p_i| ≤ γ_d·‖x‖·‖p‖          (f32 summation)
//! ```
//!
//! with `γ_d = d·u / (1 − d·u)`, `u = 2⁻²⁴`, `d` the longest chain of f32
//! roundings in `dot` (a product, `n/16` lane additions, 16 lane sums, 15
//! tail additions: below `n + 33`). Every norm is computed in f64 and
//! rounded up; the f64 roundings left (of `a`, of the bound, of `a ± B`) are
//! below `1e-15·‖x‖·‖p‖` and covered by a slack of `1e-12·(‖x‖+e)(‖p‖+e_p)`;
//! products that underflow to f32 subnormals by `(n + 1)·2⁻¹⁴⁹`.
//! `‖x‖` and `e_x` are taken as the gallery's maxima except in the
//! dominant term `e_x·‖p‖`, which is per row.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use zeroize::{Zeroize, Zeroizing};

use super::SubjectRange;
use super::secret::Secret;

/// Rows and probes above this norm take the exact path: their products
/// could overflow f32, which the bound does not model.
const MAX_NORM: f64 = 1e15;
/// Largest i8 code (symmetric range).
const ROW_MAX: i32 = 127;
/// Lanes of the integer dot product: 32 measured fastest on x86-64 (SSE2
/// `pmaddwd`), and maps onto NEON as well.
const LANES: usize = 32;
/// Relative margin on norms computed in f64 (their rounding is below
/// `(n + 2)·2⁻⁵³`, far under this for any plausible dimension).
const NORM_MARGIN: f64 = 1e-9;

pub(super) struct Quantised {
    dim: usize,
    /// i8 per component, row-major, the rows of the f32 matrix in order.
    codes: Secret<i8>,
    /// Per row, `[s, e]`: the scale and an upper bound of `‖x − s·q‖`.
    params: Secret<f32>,
    /// ≥ every row's `‖x‖`.
    max_norm: f64,
    /// ≥ every row's `e`.
    max_err: f64,
    /// Largest probe code: `dim · 127 · probe_max` must fit an i32.
    probe_max: i32,
    /// `γ_d` of the f32 `dot` for this dimension.
    gamma: f64,
}

/// A probe quantised against one gallery; its codes are zeroised on drop.
pub(super) struct QuantProbe {
    codes: Zeroizing<Vec<i16>>,
    /// `t`.
    scale: f64,
    /// ≥ `‖p‖`.
    norm: f64,
    /// ≥ `‖p − t·u‖`.
    err: f64,
}

impl Quantised {
    /// The quantised copy of `matrix` (`dim` per row), `None` when the
    /// exact path must serve it: no rows, a non-finite or huge value, or a
    /// dimension too large for i32 accumulators with a useful probe
    /// precision.
    pub(super) fn build(matrix: &[f32], dim: usize) -> Option<Self> {
        if dim == 0 || matrix.is_empty() || !matrix.len().is_multiple_of(dim) {
            return None;
        }
        let probe_max =
            (i32::MAX / ROW_MAX.checked_mul(i32::try_from(dim).ok()?)?).min(i32::from(i16::MAX));
        if probe_max < 1024 || matrix.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let n = matrix.len() / dim;
        let mut codes = Vec::with_capacity(matrix.len());
        let mut params = Vec::with_capacity(2 * n);
        let (mut max_norm, mut max_err) = (0.0f64, 0.0f64);
        for x in matrix.chunks_exact(dim) {
            let start = codes.len();
            // In range: |code| ≤ ROW_MAX.
            let scale = quantise_into(x, ROW_MAX, &mut codes, |c| c as i8);
            let q = &codes[start..];
            let err = round_up_f32(residual_norm_up(x, scale, q));
            params.extend([scale, err]);
            max_norm = max_norm.max(residual_norm_up(x, 0.0, q));
            max_err = max_err.max(f64::from(err));
        }
        if max_norm > MAX_NORM {
            // Leave nothing behind: the codes are template data too.
            codes.zeroize();
            params.zeroize();
            return None;
        }
        let d = (dim + 33) as f64 * f64::from(f32::EPSILON) / 2.0;
        Some(Self {
            dim,
            codes: Secret::new(codes, "quantised gallery"),
            params: Secret::new(params, "quantised gallery scales"),
            max_norm,
            max_err,
            probe_max,
            gamma: d / (1.0 - d),
        })
    }

    pub(super) fn is_locked(&self) -> bool {
        self.codes.is_locked() && self.params.is_locked()
    }

    pub(super) fn wipe(&mut self) {
        self.codes.wipe();
        self.params.wipe();
    }

    #[cfg(test)]
    pub(super) fn wipe_and_check(&mut self) -> bool {
        self.codes.wipe_and_check() && self.params.wipe_and_check()
    }

    #[cfg(test)]
    pub(super) fn codes(&self) -> &[i8] {
        self.codes.as_slice()
    }

    /// Row `row` as the quantised pass sees it, `s·q`.
    #[cfg(test)]
    pub(super) fn dequantised(&self, row: usize) -> Vec<f64> {
        let s = f64::from(self.params.as_slice()[2 * row]);
        self.codes.as_slice()[row * self.dim..(row + 1) * self.dim]
            .iter()
            .map(|&q| s * f64::from(q))
            .collect()
    }

    /// `None` when the probe must take the exact path (wrong length,
    /// non-finite or huge values).
    pub(super) fn quantise_probe(&self, p: &[f32]) -> Option<QuantProbe> {
        if p.len() != self.dim || p.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut codes: Zeroizing<Vec<i16>> = Zeroizing::new(Vec::with_capacity(p.len()));
        // In range: |code| ≤ probe_max ≤ i16::MAX.
        let scale = quantise_into(p, self.probe_max, &mut codes, |c| c as i16);
        let norm = residual_norm_up(p, 0.0, &codes);
        if norm > MAX_NORM {
            return None;
        }
        Some(QuantProbe {
            scale: f64::from(scale),
            norm,
            err: residual_norm_up(p, scale, &codes),
            codes,
        })
    }

    /// The part of the bound that does not depend on the row's own error.
    fn bound_const(&self, p: &QuantProbe) -> f64 {
        let (x, e) = (self.max_norm, self.max_err);
        (x + e) * p.err
            + self.gamma * x * p.norm
            + 1e-12 * (x + e) * (p.norm + p.err)
            + (self.dim + 1) as f64 * f64::from(f32::from_bits(1))
    }

    /// Row `row`'s estimate and bound: `|dot(x, p) − a| ≤ b`.
    #[cfg(test)]
    pub(super) fn estimate(&self, row: usize, p: &QuantProbe) -> (f64, f64) {
        let codes = &self.codes.as_slice()[row * self.dim..(row + 1) * self.dim];
        let s = &self.params.as_slice()[2 * row..2 * row + 2];
        interval(
            idot(codes, &p.codes),
            s[0],
            s[1],
            p.scale,
            p.norm,
            self.bound_const(p),
        )
    }

    /// Subjects that may be among the `k` best for `probe`, in index order:
    /// every other subject's exact best score is strictly below those of
    /// `k` subjects of this list. `None` when the exact path must serve
    /// (probe unusable here, or `k` covers every subject anyway).
    pub(super) fn shortlist(
        &self,
        subjects: &[SubjectRange],
        probe: &[f32],
        k: usize,
    ) -> Option<Vec<usize>> {
        if k >= subjects.len() || self.params.len() == 0 {
            return None;
        }
        let p = self.quantise_probe(probe)?;
        let c = self.bound_const(&p);
        let (codes, params, dim) = (self.codes.as_slice(), self.params.as_slice(), self.dim);
        // The k-th largest lower bound seen so far (only ever rises), and
        // the subjects whose upper bound reached it when they were seen.
        let mut floor = Floor::new(k);
        let mut maybe: Vec<(usize, f64)> = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            if s.end <= s.start {
                continue;
            }
            let (mut hi, mut lo) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            let block = codes[s.start * dim..s.end * dim].chunks_exact(dim);
            for (q, se) in block.zip(params[2 * s.start..2 * s.end].chunks_exact(2)) {
                let (a, b) = interval(idot(q, &p.codes), se[0], se[1], p.scale, p.norm, c);
                // Plain comparisons (no NaN can arise: finite inputs) are
                // cheaper than `f64::max` in this loop.
                if a + b > hi {
                    hi = a + b;
                }
                if a - b > lo {
                    lo = a - b;
                }
            }
            floor.offer(lo);
            if hi >= floor.get() {
                maybe.push((i, hi));
            }
        }
        let tau = floor.get();
        Some(
            maybe
                .into_iter()
                .filter(|&(_, hi)| hi >= tau)
                .map(|(i, _)| i)
                .collect(),
        )
    }
}

/// Estimate `a = s·t·Q` and bound `e·‖p‖ + c` of one row.
#[inline(always)]
fn interval(q: i32, s: f32, e: f32, t: f64, p_norm: f64, c: f64) -> (f64, f64) {
    (f64::from(s) * t * f64::from(q), f64::from(e) * p_norm + c)
}

/// Appends the codes of `v` (within `±max`, narrowed by `narrow`) to `out`
/// and returns their scale `s` (`v ≈ s·code`, `s = max|v_i| / max`). Any
/// codes would be correct — every bound is measured from the codes chosen
/// — these are the nearest (up to f32 rounding), computed branch-free.
fn quantise_into<T>(v: &[f32], max: i32, out: &mut Vec<T>, narrow: impl Fn(i32) -> T) -> f32 {
    let scale = max_abs(v) / max as f32;
    if scale > 0.0 {
        let (inv, m) = (1.0 / scale, max as f32);
        out.extend(v.iter().map(|&x| {
            let y = (x * inv).clamp(-m, m);
            // Half away from zero, then truncation (casts saturate and send
            // NaN, from 0 × ∞ when `scale` is subnormal, to 0).
            narrow((y + 0.5f32.copysign(y)) as i32)
        }));
    } else {
        out.extend(v.iter().map(|_| narrow(0)));
    }
    scale
}

/// `max |v_i|` (0 for an empty slice), in lanes the vectoriser can use.
fn max_abs(v: &[f32]) -> f32 {
    const L: usize = 16;
    let mut m = [0.0f32; L];
    let chunks = v.chunks_exact(L);
    let tail = chunks.remainder();
    for x in chunks {
        for i in 0..L {
            let a = x[i].abs();
            if a > m[i] {
                m[i] = a;
            }
        }
    }
    tail.iter()
        .map(|x| x.abs())
        .chain(m)
        .fold(0.0, |acc, a| if a > acc { a } else { acc })
}

/// i8 × i16 dot product into i32, written for the auto-vectoriser (no
/// intrinsics): cannot overflow, as `|q| ≤ 127`, `|u| ≤ probe_max` and
/// `dim · 127 · probe_max ≤ i32::MAX`.
#[inline]
pub(super) fn idot(q: &[i8], u: &[i16]) -> i32 {
    let n = q.len().min(u.len());
    let (q, u) = (&q[..n], &u[..n]);
    let mut acc = [0i32; LANES];
    let (qc, uc) = (q.chunks_exact(LANES), u.chunks_exact(LANES));
    let (qr, ur) = (qc.remainder(), uc.remainder());
    for (x, y) in qc.zip(uc) {
        for i in 0..LANES {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for (x, y) in qr.iter().zip(ur) {
        sum += i32::from(*x) * i32::from(*y);
    }
    sum
}

/// An upper bound of `‖v − s·q‖` (of `‖v‖` when `s = 0`), in f64 where
/// `s·q` is exact (24 × 16 bits) and the rest rounds within `NORM_MARGIN`.
fn residual_norm_up<Q: Copy + Into<f64>>(v: &[f32], s: f32, q: &[Q]) -> f64 {
    const L: usize = 8;
    let s = f64::from(s);
    let residual = |x: f32, c: Q| f64::from(x) - s * c.into();
    let mut acc = [0.0f64; L];
    let (vc, qc) = (v.chunks_exact(L), q.chunks_exact(L));
    let (vr, qr) = (vc.remainder(), qc.remainder());
    for (x, c) in vc.zip(qc) {
        for i in 0..L {
            let d = residual(x[i], c[i]);
            acc[i] += d * d;
        }
    }
    let tail: f64 = vr
        .iter()
        .zip(qr)
        .map(|(&x, &c)| residual(x, c).powi(2))
        .sum();
    (acc.iter().sum::<f64>() + tail).sqrt() * (1.0 + NORM_MARGIN)
}

/// The smallest f32 ≥ `v` (`v` finite, ≥ 0, within f32 range).
fn round_up_f32(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) < v {
        // Positive finite (or zero): the next representable value up.
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

/// The k-th largest of the values offered (−∞ until k were).
struct Floor {
    k: usize,
    heap: BinaryHeap<Reverse<Total>>,
}

impl Floor {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, v: f64) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Total(v)));
        } else if let Some(mut min) = self.heap.peek_mut()
            && v > min.0.0
        {
            *min = Reverse(Total(v));
        }
    }

    fn get(&self) -> f64 {
        match self.heap.peek() {
            Some(min) if self.heap.len() >= self.k => min.0.0,
            _ => f64::NEG_INFINITY,
        }
    }
}

/// f64 ordered by `total_cmp` (the values are never NaN here).
struct Total(f64);

impl PartialEq for Total {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Total {}

impl PartialOrd for Total {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Total {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
