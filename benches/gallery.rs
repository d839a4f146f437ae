//! 1:N over 10k and 100k random 128-d templates — identification (the three
//! best subjects: quantised pass + exact rescoring) for a random probe and
//! for a genuine one, and every row's exact score for comparison — and
//! opening 100k sealed templates from a store into a gallery.
//!
//!   cargo bench --bench gallery

use criterion::{Criterion, criterion_group, criterion_main};

use edgeid::decision::Gallery;
use edgeid::decision::synthetic::random_templates;
use edgeid::eval::gallery_bench::{BENCH_DIM, IDENTIFY_TOP_K, bench_gallery};

fn scoring(c: &mut Criterion) {
    for n in [10_000usize, 100_000] {
        let data = random_templates(n, BENCH_DIM, 1);
        let ids: Vec<String> = (0..n).map(|i| format!("s{}", i / 5)).collect();
        let gallery = Gallery::from_vectors(
            "bench",
            BENCH_DIM,
            (0..n).map(|i| {
                (
                    ids[i].as_str(),
                    i as i64,
                    &data[i * BENCH_DIM..(i + 1) * BENCH_DIM],
                )
            }),
        )
        .expect("gallery");
        let probe = random_templates(1, BENCH_DIM, 2);
        // A genuine probe: one enrolled template plus noise (score ≈ 0.7).
        let row = n / 3;
        let noise = random_templates(1, BENCH_DIM, 3);
        let mut genuine: Vec<f32> = data[row * BENCH_DIM..(row + 1) * BENCH_DIM]
            .iter()
            .zip(&noise)
            .map(|(x, e)| x + e)
            .collect();
        let norm = genuine.iter().map(|x| x * x).sum::<f32>().sqrt();
        genuine.iter_mut().for_each(|x| *x /= norm);

        c.bench_function(&format!("1:N top-{IDENTIFY_TOP_K} {n}"), |b| {
            b.iter(|| gallery.top_subjects(&probe, IDENTIFY_TOP_K))
        });
        c.bench_function(&format!("1:N top-{IDENTIFY_TOP_K} {n} genuine"), |b| {
            b.iter(|| gallery.top_subjects(&genuine, IDENTIFY_TOP_K))
        });
        let mut out = Vec::with_capacity(n);
        c.bench_function(&format!("1:N score_all exact {n}"), |b| {
            b.iter(|| {
                gallery.score_all(&probe, &mut out);
                out.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            })
        });
    }
}

fn open(c: &mut Criterion) {
    // The figures `edgeid bench` reports, printed once for the record.
    for n in [10_000usize, 100_000] {
        let report = bench_gallery(n).expect("bench");
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    }
    let mut group = c.benchmark_group("gallery open");
    group.sample_size(10);
    group.bench_function("100k sealed (write + open, open reported)", |b| {
        b.iter(|| bench_gallery(100_000).expect("bench").open_ms)
    });
    group.finish();
}

criterion_group!(benches, scoring, open);
criterion_main!(benches);
