//! `edgeid eval voice --dataset DIR`: speaker verification on
//! DIR/<speaker>/*.flac|wav (protocol in `edgeid::eval::voice`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::voice::REPLAY_COSINE;
use edgeid::decision::{OperatingPoint, Threshold};
use edgeid::eval::metrics::{VerificationMetrics, det, verification_metrics};
use edgeid::eval::plot::{Series, det_chart};
use edgeid::eval::voice::{
    ReplayFigures, Speaker, Split, Utterance, embed_all, read_voice_dataset, replay_figures, trials,
};
use edgeid::infer::default_backend;
use edgeid::voice::{VoiceEmbedder, VoicePipeline};

use super::GlobalArgs;
use super::output::emit;
use super::pipeline::open_manifest;
use super::progress::counter;

#[derive(Debug, Args)]
pub struct VoiceArgs {
    /// Dataset directory: DIR/<speaker>/*.flac or *.wav.
    #[arg(long)]
    pub dataset: PathBuf,
    #[command(flatten)]
    pub trials: VoiceTrialArgs,
    /// Decide at this cosine similarity instead of the manifest's threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Write the DET curve here (PNG, or SVG by extension).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// How voice trials are made (`eval voice` and `eval fused`).
#[derive(Debug, Args)]
pub struct VoiceTrialArgs {
    /// Utterances per speaker used for enrolment (the first ones by name);
    /// speakers with no more than this many are impostors only.
    #[arg(long, default_value_t = 3)]
    pub enrol: usize,
    /// Seconds of speech (after the silence trim) an utterance needs.
    #[arg(long, default_value_t = 2.0)]
    pub min_speech: f64,
    /// Seconds of speech each probe is cut to, from its start: the daemon's
    /// 2.7 by default (what it embeds for a verify); 0 scores whole
    /// utterances. Templates always use whole enrolment utterances.
    #[arg(long, default_value_t = edgeid::decision::voice::PROBE_TARGET_SPEECH_S)]
    pub probe_speech: f64,
}

impl VoiceTrialArgs {
    /// Every utterance of `speakers` embedded under these settings.
    pub fn embed(
        &self,
        pipeline: &VoicePipeline,
        speakers: &[Speaker],
        tick: impl Fn(),
    ) -> Vec<Utterance> {
        let cut = (self.probe_speech > 0.0).then_some(self.probe_speech);
        embed_all(pipeline, speakers, self.min_speech, cut, tick)
    }
}

pub fn voice(global: &GlobalArgs, args: VoiceArgs) -> anyhow::Result<()> {
    let speakers = read_voice_dataset(&args.dataset)?;
    let manifest = open_manifest(global)?;
    let embedder = VoiceEmbedder::load(&manifest, default_backend().as_ref())
        .context("loading the voice embedder")?;
    let spec = embedder.spec().clone();
    let pipeline = VoicePipeline::new(embedder);
    let files: usize = speakers.iter().map(|s| s.files.len()).sum();
    let bar = counter(files as u64, "utterances", global.json);
    let utterances = args.trials.embed(&pipeline, &speakers, || bar.inc(1));
    bar.finish_and_clear();
    let t = trials(&speakers, &utterances, args.trials.enrol);
    anyhow::ensure!(
        !t.genuine.is_empty() && !t.impostor.is_empty(),
        "{}: no genuine or no impostor trials (a speaker needs more than {} utterances)",
        args.dataset.display(),
        args.trials.enrol
    );
    let point = OperatingPoint(DEFAULT_OPERATING_POINT);
    let threshold = Threshold::resolve(args.threshold, &spec, point).unwrap_or_else(|| {
        tracing::warn!(model = %spec.id, "the manifest has no {DEFAULT_OPERATING_POINT} threshold; deciding at this dataset's EER point");
        let eer = verification_metrics(&t.genuine, &t.impostor, 0.5).eer_threshold;
        Threshold {
            value: eer,
            source: format!("this dataset's EER point (no manifest {DEFAULT_OPERATING_POINT} threshold for {})", spec.id),
        }
    });
    let metrics = verification_metrics(&t.genuine, &t.impostor, threshold.value);
    if let Some(plot) = &args.plot {
        det_chart(
            plot,
            &format!("Voice DET: {} on {}", spec.id, args.dataset.display()),
            &[Series {
                label: format!("{} (EER {:.2} %)", spec.id, metrics.eer * 100.0),
                points: det(&t.genuine, &t.impostor),
            }],
        )?;
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        dataset: &'a Path,
        model: &'a str,
        protocol: &'static str,
        split: &'a Split,
        speakers: usize,
        threshold_source: &'a str,
        metrics: &'a VerificationMetrics,
        replay: ReplayFigures,
        failed: Vec<&'a Utterance>,
    }
    let out = Out {
        dataset: &args.dataset,
        model: &spec.id,
        protocol: PROTOCOL,
        split: &t.split,
        speakers: speakers.len(),
        threshold_source: &threshold.source,
        metrics: &metrics,
        replay: replay_figures(&utterances, REPLAY_COSINE),
        failed: utterances.iter().filter(|u| u.error.is_some()).collect(),
    };
    emit(global.json, &out, |o| {
        print_human(
            o.dataset,
            o.model,
            o.split,
            o.threshold_source,
            o.metrics,
            &o.failed,
        );
        let r = &o.replay;
        println!(
            "replay     {} of {} same-speaker utterance pairs reach the replay cosine {} (highest {:.4}): genuine repeats the replay rule would refuse",
            r.at_or_above, r.same_speaker_pairs, r.replay_cosine, r.max_cosine
        );
    })
}

const PROTOCOL: &str = "per speaker, utterances sorted by name: the first N enrol (template = normalised mean embedding), the rest are probes; genuine = probe vs own template, impostor = every non-enrolment utterance vs every other speaker's template; a probe with too little speech is a failure to acquire (reported as FTA, left out of the trials), an unreadable one scores -inf";

fn print_human(
    dataset: &Path,
    model: &str,
    split: &Split,
    threshold_source: &str,
    m: &VerificationMetrics,
    failed: &[&Utterance],
) {
    println!("dataset    {} ({model})", dataset.display());
    println!("protocol   {PROTOCOL}");
    println!(
        "split      {} speakers enrolled on {} utterances each ({} enrolment utterances), {} impostor-only speakers; {} probe utterances, {} failed",
        split.enrolled_speakers,
        split.enrol_per_speaker,
        split.enrol_utterances,
        split.impostor_only_speakers,
        split.probe_utterances,
        split.failed_utterances
    );
    println!(
        "FTA        {:.2} % ({} probes with too little speech, answered too_little_speech, not scored)",
        split.fta_rate * 100.0,
        split.failed_to_acquire
    );
    println!(
        "trials     {} genuine, {} impostor ({} unscored)",
        m.genuine_pairs, m.impostor_pairs, m.unscored_pairs
    );
    println!(
        "EER        {:.2} % at cosine {:.4}",
        m.eer * 100.0,
        m.eer_threshold
    );
    println!(
        "TAR@FAR    1e-2: {:.2} % (threshold {:.4}); 1e-3: {:.2} % (threshold {:.4}; resolution {:.1e})",
        m.tar_at_far_1e2 * 100.0,
        m.threshold_at_far_1e2,
        m.tar_at_far_1e3 * 100.0,
        m.threshold_at_far_1e3,
        1.0 / m.impostor_pairs.max(1) as f64
    );
    println!(
        "threshold  {:.4} from {threshold_source}: FAR {:.3} %, FRR {:.2} %",
        m.threshold,
        m.far * 100.0,
        m.frr * 100.0
    );
    for u in failed {
        println!(
            "failed     {}: {}",
            u.path.display(),
            u.error.as_deref().unwrap_or("")
        );
    }
}
