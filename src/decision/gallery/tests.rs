//! Gallery tests: exact scoring, and the quantised 1:N pass returning the
//! exact f32 result.

use super::*;
use crate::decision::synthetic::random_templates;

#[test]
fn dot_matches_naive_for_odd_lengths() {
    for n in [1usize, 15, 16, 17, 128, 131] {
        let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4, "n = {n}");
    }
}

#[test]
fn scores_per_subject() {
    let a = [1.0f32, 0.0];
    let b = [0.0f32, 1.0];
    let c = [0.6f32, 0.8];
    let entries = vec![
        ("alice", 1, &a[..]),
        ("alice", 2, &c[..]),
        ("bob", 3, &b[..]),
    ];
    let g = Gallery::from_vectors("m", 2, entries.into_iter()).expect("gallery");
    assert_eq!(g.score_subject("alice", &b), Some(0.8));
    assert_eq!(g.score_subject("carol", &b), None);
    let top = g.top_subjects(&b, 5);
    assert_eq!(top[0].subject, "bob");
    assert_eq!(
        top[1],
        SubjectScore {
            subject: "alice".into(),
            score: 0.8
        }
    );
    let dropped = g.without(&BTreeSet::from(["alice"]));
    assert!(!dropped.contains("alice") && dropped.contains("bob"));
}

// ---- the quantised 1:N pass ------------------------------------------

/// Scores as bits: "identical" means the same f32, not a close one.
type Ranked = Vec<(String, u32)>;

/// The 1:N result as computed before the quantised pass existed: every
/// row's f32 score, each subject's best, a stable sort, the first `k`.
fn reference_top(g: &Gallery, probe: &[f32], k: usize) -> Ranked {
    let mut scores = Vec::new();
    g.score_all(probe, &mut scores);
    if scores.is_empty() {
        return Vec::new();
    }
    let mut best: Vec<(usize, f32)> = g
        .subjects
        .iter()
        .enumerate()
        .filter(|(_, s)| s.end > s.start)
        .map(|(i, s)| {
            (
                i,
                scores[s.start..s.end]
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max),
            )
        })
        .collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    best.truncate(k);
    best.into_iter()
        .map(|(i, s)| (g.subjects[i].id.clone(), s.to_bits()))
        .collect()
}

fn ranked(top: &[SubjectScore]) -> Ranked {
    top.iter()
        .map(|s| (s.subject.clone(), s.score.to_bits()))
        .collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn normalised(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// A gallery of the rows of `data`, grouped into subjects of 1–7 rows.
fn grouped(data: &[f32], dim: usize, rng: &mut Rng) -> Gallery {
    let n = data.len() / dim;
    let mut ids = Vec::with_capacity(n);
    let mut subject = 0;
    while ids.len() < n {
        for _ in 0..(1 + rng.below(7)).min(n - ids.len()) {
            ids.push(format!("s{subject:05}"));
        }
        subject += 1;
    }
    Gallery::from_vectors(
        "m",
        dim,
        (0..n).map(|r| (ids[r].as_str(), r as i64, &data[r * dim..(r + 1) * dim])),
    )
    .expect("gallery")
}

/// Random probes, near copies of rows (genuine matches) and exact copies.
fn probes(data: &[f32], dim: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let n = data.len() / dim;
    let mut out: Vec<Vec<f32>> = (0..6)
        .map(|i| random_templates(1, dim, 0x9e37_79b9 + i))
        .collect();
    for noise in [0.0f32, 1e-3, 0.3] {
        let r = rng.below(n);
        let mut p: Vec<f32> = data[r * dim..(r + 1) * dim]
            .iter()
            .map(|&x| x + noise * rng.unit())
            .collect();
        if noise > 0.0 {
            normalised(&mut p);
        }
        out.push(p);
    }
    out
}

/// Checks the quantised 1:N against the reference; returns whether the
/// shortlist ran and how many subjects it kept.
fn check_top(g: &Gallery, probe: &[f32], k: usize) -> Option<usize> {
    assert_eq!(
        ranked(&g.top_subjects(probe, k)),
        reference_top(g, probe, k),
        "dim {}, {} rows, k {k}",
        g.dim(),
        g.len()
    );
    g.quant
        .as_ref()
        .and_then(|q| q.shortlist(&g.subjects, probe, k))
        .map(|s| s.len())
}

#[test]
fn quantised_top_k_is_the_exact_top_k() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for dim in [1usize, 2, 3, 7, 31, 128, 129, 512] {
        for n in [1usize, 2, 9, 300, 4000] {
            let data = random_templates(n, dim, (dim * 7919 + n) as u64);
            let g = grouped(&data, dim, &mut rng);
            assert!(g.quant.is_some(), "dim {dim}: no quantised copy");
            let mut pruned = 0;
            for p in probes(&data, dim, &mut rng) {
                for k in [1usize, 3, 10, g.subject_count() - 1, usize::MAX] {
                    if let Some(kept) = check_top(&g, &p, k) {
                        pruned += usize::from(kept < g.subject_count() / 2);
                    }
                }
            }
            // The fast path really served (the test is not passing on the
            // exact fallback): wide galleries prune most subjects.
            if n >= 300 && dim >= 7 {
                assert!(pruned >= 9, "dim {dim}, n {n}: pruned only {pruned} times");
            }
        }
    }
}

/// Many subjects within the quantisation error of each other (and exact
/// ties across subjects): the quantised order is wrong, the result must
/// not be.
#[test]
fn near_ties_and_ties_rank_exactly() {
    let dim = 128;
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let base = random_templates(1, dim, 77);
    let mut data = random_templates(2000, dim, 78); // far-away subjects
    for i in 0..600 {
        let eps = [0.0f32, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3][i % 6];
        let mut v: Vec<f32> = base.iter().map(|&x| x + eps * rng.unit()).collect();
        if i % 2 == 0 {
            normalised(&mut v);
        }
        // Insert among the others so ties fall across the gallery order.
        let at = rng.below(data.len() / dim + 1) * dim;
        data.splice(at..at, v);
    }
    let g = grouped(&data, dim, &mut rng);
    let q = g.quant.as_ref().expect("quantised");

    let mut probes = vec![base.clone()];
    for noise in [1e-6f32, 1e-4, 1e-2] {
        let mut p: Vec<f32> = base.iter().map(|&x| x + noise * rng.unit()).collect();
        normalised(&mut p);
        probes.push(p);
    }
    let mut inversions = 0;
    for p in &probes {
        // The quantised estimates order some rows wrongly ...
        let qp = q.quantise_probe(p).expect("probe");
        let exact: Vec<f32> = data.chunks_exact(dim).map(|x| dot(x, p)).collect();
        let est: Vec<f64> = (0..g.len()).map(|r| q.estimate(r, &qp).0).collect();
        for r in 1..g.len() {
            if (est[r] - est[r - 1]) * f64::from(exact[r] - exact[r - 1]) < 0.0 {
                inversions += 1;
            }
        }
        // ... the ranking is still the exact one, ties in gallery order.
        for k in [1usize, 2, 3, 7, 50, 200] {
            let kept = check_top(&g, p, k).expect("shortlist ran");
            assert!(kept < g.subject_count(), "nothing pruned");
        }
    }
    assert!(
        inversions > 10,
        "only {inversions} inversions: not a near-tie test"
    );
}

/// `|dot(x, p) − a| ≤ b` for one row `x` and probe `p`; returns the
/// fraction of the bound used.
fn bound_use(x: &[f32], p: &[f32]) -> f64 {
    let g = Gallery::from_vectors("m", x.len(), std::iter::once(("s", 1, x))).expect("gallery");
    let q = g.quant.as_ref().expect("quantised");
    let qp = q.quantise_probe(p).expect("probe");
    let (a, b) = q.estimate(0, &qp);
    let exact = f64::from(dot(x, p));
    assert!(
        (exact - a).abs() <= b,
        "bound broken: dot {exact}, estimate {a}, bound {b}, dim {}",
        x.len()
    );
    (exact - a).abs() / b
}

/// The direction of the row's quantisation error (the probe that makes
/// `(x − x̂)·p` as large as Cauchy–Schwarz allows).
fn error_direction(x: &[f32]) -> Vec<f32> {
    let g = Gallery::from_vectors("m", x.len(), std::iter::once(("s", 1, x))).expect("gallery");
    let xq = g.quant.as_ref().expect("quantised").dequantised(0);
    let mut e: Vec<f32> = x
        .iter()
        .zip(&xq)
        .map(|(&v, &h)| (f64::from(v) - h) as f32)
        .collect();
    normalised(&mut e);
    e
}

#[test]
fn error_bound_holds_on_adversarial_vectors() {
    let mut rng = Rng(0x0bad_c0de_1234_4321);
    let mut worst_aligned = 0.0f64;
    for dim in [1usize, 2, 3, 17, 127, 128, 129, 512] {
        let mut rows: Vec<Vec<f32>> = Vec::new();
        rows.push(random_templates(1, dim, dim as u64));
        // Every component half-way between two codes (the largest rounding
        // error), the scale fixed by one component at 127 steps.
        let mut half: Vec<f32> = (0..dim)
            .map(|i| {
                if i == 0 {
                    127.0
                } else {
                    rng.below(254) as f32 - 126.5
                }
            })
            .collect();
        normalised(&mut half);
        rows.push(half);
        // One spike: every other component near half a step of a scale set
        // by the spike.
        let spike: Vec<f32> = (0..dim)
            .map(|i| {
                if i == 0 {
                    1.0
                } else {
                    0.0039
                        * if rng.next().is_multiple_of(2) {
                            1.0
                        } else {
                            -1.0
                        }
                }
            })
            .collect();
        rows.push(spike);
        // Tiny and large magnitudes.
        let tiny = rows[0].iter().map(|x| x * 1e-30).collect();
        let large = rows[0].iter().map(|x| x * 1e10).collect();
        rows.extend([tiny, large]);
        for x in &rows {
            let e = error_direction(x);
            let aligned_mix: Vec<f32> = e.iter().zip(x).map(|(a, b)| a + 0.1 * b).collect();
            let spiky_probe: Vec<f32> = (0..dim)
                .map(|i| if i == dim / 2 { 1.0 } else { 1e-4 * rng.unit() })
                .collect();
            let mut candidates = vec![
                x.clone(),
                x.iter().map(|v| -v).collect(),
                e.clone(),
                e.iter().map(|v| -v).collect(),
                aligned_mix,
                spiky_probe,
                vec![0.0; dim],
            ];
            candidates.extend((0..50).map(|i| random_templates(1, dim, 1000 + i)));
            for (j, p) in candidates.iter().enumerate() {
                let used = bound_use(x, p);
                if j == 2 && dim >= 17 && x.iter().all(|v| v.abs() < 2.0) {
                    worst_aligned = worst_aligned.max(used);
                }
            }
        }
        // Unit vectors: the bound is small enough to prune with.
        let x = &rows[0];
        let g = Gallery::from_vectors("m", dim, std::iter::once(("s", 1, &x[..]))).expect("g");
        let q = g.quant.as_ref().expect("quantised");
        let (_, b) = q.estimate(0, &q.quantise_probe(x).expect("probe"));
        assert!(b < 5e-3, "dim {dim}: bound {b} too loose to prune");
    }
    // On the error-aligned probe the bound is nearly attained: it is the
    // real worst case, not a loose one.
    assert!(
        worst_aligned > 0.5,
        "aligned probes use {worst_aligned} of the bound"
    );
}

#[test]
fn integer_dot_matches_naive_at_the_extremes() {
    let mut rng = Rng(42);
    for n in [0usize, 1, 31, 32, 33, 100, 128, 512] {
        for extreme in [false, true] {
            let q: Vec<i8> = (0..n)
                .map(|_| if extreme { -127 } else { rng.next() as i8 / 2 })
                .collect();
            let u: Vec<i16> = (0..n)
                .map(|_| if extreme { -32767 } else { rng.next() as i16 })
                .collect();
            let naive: i64 = q
                .iter()
                .zip(&u)
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum();
            assert_eq!(i64::from(quant::idot(&q, &u)), naive, "n = {n}");
        }
    }
}

#[test]
fn unusable_values_take_the_exact_path() {
    let dim = 16;
    let mut rng = Rng(7);
    let mut data = random_templates(50, dim, 3);
    let g = grouped(&data, dim, &mut rng);
    let probe = random_templates(1, dim, 4);
    // Non-finite probes: same result as before (every score NaN → −∞).
    for bad in [f32::NAN, f32::INFINITY] {
        let mut p = probe.clone();
        p[3] = bad;
        assert_eq!(ranked(&g.top_subjects(&p, 3)), reference_top(&g, &p, 3));
        assert!(check_top(&g, &p, 3).is_none());
    }
    assert!(g.top_subjects(&probe[..dim - 1], 3).is_empty());
    assert!(g.top_subjects(&probe, 0).is_empty());
    // Rows with a non-finite or huge value: no quantised copy, exact result.
    for bad in [f32::NAN, f32::NEG_INFINITY, 1e20] {
        data[5 * dim + 1] = bad;
        let g = grouped(&data, dim, &mut rng);
        assert!(g.quant.is_none());
        for k in [1, 3, 100] {
            assert_eq!(
                ranked(&g.top_subjects(&probe, k)),
                reference_top(&g, &probe, k)
            );
        }
    }
    let empty = Gallery::from_vectors("m", dim, std::iter::empty()).expect("empty");
    assert!(empty.top_subjects(&probe, 3).is_empty());
}

#[test]
fn both_copies_are_zeroised_on_wipe() {
    let dim = 128;
    let data = random_templates(300, dim, 11);
    let mut rng = Rng(5);
    let mut g = grouped(&data, dim, &mut rng);
    assert!(g.matrix.as_slice().iter().any(|&x| x != 0.0));
    let q = g.quant.as_mut().expect("quantised");
    assert!(q.codes().iter().any(|&c| c != 0));
    // `Drop` is `wipe` (Secret's drop); check every byte after it.
    assert!(q.wipe_and_check());
    assert!(g.matrix.wipe_and_check());
    assert!(!g.is_memory_locked());
}
