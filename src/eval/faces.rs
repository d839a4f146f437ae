//! Face verification on the LFW pairs protocol: `DIR/<name>/<name>_NNNN.jpg`
//! and a `pairs.txt` whose lines are `name i j` (same person) or
//! `name1 i name2 j` (different people); a first line of one or two numbers
//! is the header.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::EvalError;
use super::metrics::{VerificationMetrics, percentile, verification_metrics};
use super::runner::{ImageOutcome, analyse_all};
use crate::pipeline::FacePipeline;

#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub a: PathBuf,
    pub b: PathBuf,
    pub genuine: bool,
}

fn image_path(dataset: &Path, name: &str, index: &str) -> Option<PathBuf> {
    let n: u32 = index.parse().ok()?;
    Some(dataset.join(name).join(format!("{name}_{n:04}.jpg")))
}

/// Parses a pairs file against a dataset directory.
pub fn read_pairs(dataset: &Path, pairs_file: &Path) -> Result<Vec<Pair>, EvalError> {
    let text = std::fs::read_to_string(pairs_file).map_err(|source| EvalError::Read {
        path: pairs_file.to_owned(),
        source,
    })?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |message: &str| EvalError::Pairs {
            path: pairs_file.to_owned(),
            line: i + 1,
            message: message.to_owned(),
        };
        let pair = match fields.as_slice() {
            [] => continue,
            [a] | [a, _] if i == 0 && a.parse::<u32>().is_ok() => continue,
            [name, x, y] => Pair {
                a: image_path(dataset, name, x)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                b: image_path(dataset, name, y)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                genuine: true,
            },
            [n1, x, n2, y] => Pair {
                a: image_path(dataset, n1, x)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                b: image_path(dataset, n2, y)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                genuine: false,
            },
            _ => return Err(bad("expected `name i j` or `name1 i name2 j`")),
        };
        pairs.push(pair);
    }
    if pairs.is_empty() {
        return Err(EvalError::Empty(pairs_file.to_owned()));
    }
    Ok(pairs)
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageStats {
    pub images: usize,
    /// Images where no face was found.
    pub no_face: Vec<PathBuf>,
    /// Images that could not be read or analysed, with the error.
    pub errors: Vec<(PathBuf, String)>,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaceEvalReport {
    pub metrics: VerificationMetrics,
    pub images: ImageStats,
    pub threads: usize,
    #[serde(skip)]
    pub genuine_scores: Vec<f32>,
    #[serde(skip)]
    pub impostor_scores: Vec<f32>,
}

/// Embeds every image the pairs reference, scores the pairs, and computes
/// the metrics at `threshold`.
pub fn evaluate(
    pipeline: &FacePipeline,
    pairs: &[Pair],
    threshold: f32,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> FaceEvalReport {
    let images: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let outcomes = analyse_all(pipeline, &images, threads, progress);
    let embedding = |path: &PathBuf| {
        outcomes
            .get(path)
            .and_then(|o| o.analysis.as_ref().ok())
            .and_then(|a| a.face.as_ref())
            .map(|f| &f.embedding)
    };
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for pair in pairs {
        let score = match (embedding(&pair.a), embedding(&pair.b)) {
            (Some(a), Some(b)) => a.cosine(b),
            _ => f32::NEG_INFINITY,
        };
        if pair.genuine {
            genuine.push(score)
        } else {
            impostor.push(score)
        }
    }
    FaceEvalReport {
        metrics: verification_metrics(&genuine, &impostor, threshold),
        images: image_stats(&outcomes),
        threads,
        genuine_scores: genuine,
        impostor_scores: impostor,
    }
}

fn image_stats(outcomes: &std::collections::BTreeMap<PathBuf, ImageOutcome>) -> ImageStats {
    let mut times: Vec<f64> = outcomes.values().map(|o| o.seconds * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let mut no_face = Vec::new();
    let mut errors = Vec::new();
    for (path, o) in outcomes {
        match &o.analysis {
            Ok(a) if a.face.is_none() => no_face.push(path.clone()),
            Ok(_) => {}
            Err(e) => errors.push((path.clone(), e.clone())),
        }
    }
    ImageStats {
        images: outcomes.len(),
        no_face,
        errors,
        mean_ms: times.iter().sum::<f64>() / times.len().max(1) as f64,
        p50_ms: percentile(&times, 50.0),
        p99_ms: percentile(&times, 99.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lfw_pairs_with_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pairs.txt");
        std::fs::write(&file, "1\t2\nAbel_Pacheco\t1\t4\nA_B\t1\tC_D\t12\n").expect("write");
        let pairs = read_pairs(Path::new("/data"), &file).expect("parse");
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            pairs[0].a,
            Path::new("/data/Abel_Pacheco/Abel_Pacheco_0001.jpg")
        );
        assert_eq!(
            pairs[0].b,
            Path::new("/data/Abel_Pacheco/Abel_Pacheco_0004.jpg")
        );
        assert!(pairs[0].genuine);
        assert_eq!(pairs[1].b, Path::new("/data/C_D/C_D_0012.jpg"));
        assert!(!pairs[1].genuine);
    }

    #[test]
    fn rejects_malformed_lines_naming_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pairs.txt");
        std::fs::write(&file, "1\t300\nname\tx\t3\n").expect("write");
        let err = read_pairs(Path::new("/data"), &file).expect_err("must fail");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
