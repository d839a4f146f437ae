//! `edgeid demo`: in a temporary state directory with a temporary KEK,
//! enrol one person from sample photos, verify a genuine and an impostor
//! photo, and show each stage, both verdicts and their verification.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use edgeid::config::Config;
use edgeid::decision::Mode;
use edgeid::store::audit::{self, ChainReport};
use edgeid::store::keys::{self, KekSource};
use edgeid::store::{Kek, Store, unix_now};
use edgeid::verdict::{Jwk, jws};

use super::GlobalArgs;
use super::flow::{self, DecisionReport, EnrollReport, PhotoReport, Request};
use super::output::emit;
use super::pad;
use super::state::PipelineCell;

pub const SAMPLES_ENV: &str = "EDGEID_SAMPLES_DIR";
pub const DEFAULT_SAMPLES: &str = ".cache/test-data/face_recognition-1.3.0/tests/test_images";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory holding obama.jpg, obama2.jpg, obama3.jpg and biden.jpg.
    #[arg(long, env = SAMPLES_ENV)]
    pub samples: Option<PathBuf>,
    /// Keep the temporary state directory and print where it is.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Serialize)]
struct VerdictShown {
    photo: String,
    compact: String,
    header: edgeid::verdict::Header,
    claims: edgeid::verdict::Claims,
    verification: String,
    report: DecisionReport,
}

#[derive(Serialize)]
struct DemoReport {
    state_dir: PathBuf,
    device_id: String,
    kid: String,
    jwk: Jwk,
    keys_init_ms: f64,
    models_load_ms: f64,
    enroll: EnrollReport,
    enroll_ms: f64,
    genuine: VerdictShown,
    impostor: VerdictShown,
    audit: ChainReport,
}

fn samples_dir(args: &DemoArgs) -> anyhow::Result<PathBuf> {
    let dir = args
        .samples
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SAMPLES));
    let needed = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"];
    if let Some(missing) = needed.iter().find(|f| !dir.join(f).is_file()) {
        anyhow::bail!(
            "sample photo {} is missing: run `scripts/fetch-test-data` and pass the directory it prints with --samples \
             (or set {SAMPLES_ENV})",
            dir.join(missing).display()
        );
    }
    Ok(dir)
}

/// A scratch directory removed on drop unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn scratch(keep: bool) -> anyhow::Result<Scratch> {
    let mut tag = [0u8; 8];
    SystemRandom::new()
        .fill(&mut tag)
        .map_err(|_| anyhow::anyhow!("random number generator failed"))?;
    let path = std::env::temp_dir().join(format!("edgeid-demo-{}", hex::encode(tag)));
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(Scratch { path, keep })
}

fn write_kek(path: &Path) -> anyhow::Result<Kek> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| anyhow::anyhow!("random number generator failed"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes.as_ref())?;
    Ok(Kek::read(path, KekSource::File(path.to_owned()), true)?)
}

pub fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<()> {
    let samples = samples_dir(&args)?;
    let dir = scratch(args.keep)?;
    let state_dir = dir.path.join("state");
    let kek = write_kek(&dir.path.join("kek"))?;
    let config = Config::default();

    let t = Instant::now();
    let mut store = Store::create(&state_dir)?;
    let device_id = keys::random_device_id()?;
    let ring = keys::init(&mut store, &kek, &device_id, false)?;
    let keys_init_ms = t.elapsed().as_secs_f64() * 1e3;
    let jwk = Jwk::from_public_key(&ring.public_key());

    let mut cell = PipelineCell::new(global);
    cell.get()?;
    let models_load_ms = cell.load_ms.unwrap_or_default();

    let t = Instant::now();
    let files = [samples.join("obama.jpg"), samples.join("obama3.jpg")];
    let pad = pad::open_check(global, None, None)?;
    let enroll = flow::enroll(
        &mut store,
        &ring,
        cell.get()?,
        &flow::EnrollRequest {
            subject: "obama",
            files: &files,
            replace: false,
            pad: pad.as_ref(),
        },
        true,
    )?;
    let enroll_ms = t.elapsed().as_secs_f64() * 1e3;

    let mut shown = Vec::new();
    for (photo, nonce) in [
        ("obama2.jpg", "demo-nonce-1"),
        ("biden.jpg", "demo-nonce-2"),
    ] {
        let files = [samples.join(photo)];
        let report = flow::decide(
            &mut store,
            &ring,
            &config,
            &mut cell,
            &Request {
                mode: Mode::Verify,
                subject: Some("obama"),
                nonce: Some(nonce),
                files: &files,
                threshold: None,
                voice: None,
                modalities: None,
            },
        )?;
        let compact = report.issued.verdict.clone();
        let (header, claims) = jws::decode_unverified(&compact)?;
        let key = jwk.public_key()?;
        let verification =
            match jws::verify(&compact, &key, &jwk.key_id()?, Some(nonce), unix_now()) {
                Ok(_) => "valid: signature, kid, exp and nonce all check".to_owned(),
                Err(e) => format!("INVALID: {e}"),
            };
        shown.push(VerdictShown {
            photo: photo.into(),
            compact,
            header,
            claims,
            verification,
            report,
        });
    }
    let audit = audit::verify(&store)?;
    let impostor = shown.pop().context("impostor verdict")?;
    let genuine = shown.pop().context("genuine verdict")?;
    let report = DemoReport {
        state_dir: state_dir.clone(),
        device_id,
        kid: ring.kid.clone(),
        jwk,
        keys_init_ms,
        models_load_ms,
        enroll,
        enroll_ms,
        genuine,
        impostor,
        audit,
    };
    emit(global.json, &report, |r| print_human(r, args.keep))
}

fn stages(p: &PhotoReport) -> String {
    let mut parts = vec![format!("decode {:.1} ms", p.decode_ms)];
    parts.extend(
        p.timings
            .stages()
            .iter()
            .map(|(n, d)| format!("{n} {:.1} ms", d.as_secs_f64() * 1e3)),
    );
    parts.join(", ")
}

fn print_human(r: &DemoReport, keep: bool) {
    println!(
        "== keys: temporary state dir, temporary KEK ({:.1} ms)",
        r.keys_init_ms
    );
    println!("   device {}  kid {}", r.device_id, r.kid);
    println!(
        "== models loaded and checksummed ({:.0} ms)",
        r.models_load_ms
    );
    println!(
        "== enrol \"obama\" ({:.0} ms, model {})",
        r.enroll_ms, r.enroll.model_id
    );
    for p in &r.enroll.photos {
        let verdict = p
            .rejected
            .map_or("accepted".to_owned(), |x| format!("rejected: {x}"));
        println!(
            "   {}: {} face(s), {verdict}",
            file_name(&p.file),
            p.faces_detected
        );
        println!("     {}", stages(p));
    }
    println!(
        "   presentation-attack check on photos: {}",
        pad::describe(r.enroll.presentation_attack_check.as_ref())
    );
    for (label, v) in [("genuine", &r.genuine), ("impostor", &r.impostor)] {
        let o = &v.report.outcome;
        println!("== verify {} as \"obama\" ({label})", v.photo);
        for p in &v.report.gathered.photos {
            println!("   {}", stages(p));
        }
        println!(
            "   gallery open {:.2} ms, decide {:.3} ms, seq+sign+audit {:.2} ms",
            v.report.gathered.gallery_open_ms.unwrap_or_default(),
            v.report.gathered.decide_ms.unwrap_or_default(),
            v.report.issue_ms
        );
        println!(
            "   decision: {} ({}); similarity {} vs threshold {} (audit log only, never in the verdict)",
            o.decision.as_str(),
            o.reason,
            o.score.map_or("-".into(), |s| format!("{s:.4}")),
            o.threshold.map_or("-".into(), |s| format!("{s:.4}"))
        );
        println!(
            "   header: {}",
            serde_json::to_string(&v.header).unwrap_or_default()
        );
        println!(
            "   claims: {}",
            serde_json::to_string(&v.claims).unwrap_or_default()
        );
        println!("   compact: {}", v.compact);
        println!("   verification with the device JWK: {}", v.verification);
    }
    match &r.audit.broken {
        None => println!("== audit log: {} record(s), chain intact", r.audit.records),
        Some(b) => println!("== audit log: BROKEN at record {}", b.first_broken_record()),
    }
    if keep {
        println!("state kept in {}", r.state_dir.display());
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
