//! Speaker verification on DIR/<speaker>/*.flac|wav.
//!
//! Protocol: utterances of a speaker are sorted by file name; a speaker
//! with more than `enrol` utterances is enrolled on its first `enrol`
//! (template = L2-normalised mean of their embeddings, as an enrolment
//! would store it) and probes with the rest. Genuine trials: each such
//! probe against its own speaker's template. Impostor trials: every
//! utterance not used for enrolment (single-utterance speakers included)
//! against every other speaker's template. An utterance that could not be
//! embedded (unreadable) scores −∞ in all its trials: counted as an error,
//! never dropped. A probe with too little speech is a failure to acquire
//! (ISO/IEC 19795-1): the product answers it `too_little_speech` and asks
//! for more, it decides nothing; such probes are counted and reported as
//! the FTA rate, apart from the match errors.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::EvalError;
use crate::sources::audio::load_file;
use crate::voice::embed::cosine;
use crate::voice::{RATE, VoiceError, VoicePipeline};

/// Longest utterance read (seconds); longer files are errors.
pub const MAX_UTTERANCE_S: f64 = 120.0;

#[derive(Debug, Clone, Serialize)]
pub struct Speaker {
    pub id: String,
    pub files: Vec<PathBuf>,
}

/// Speakers (sub-directories) and their .flac / .wav files, sorted.
pub fn read_voice_dataset(dir: &Path) -> Result<Vec<Speaker>, EvalError> {
    let read = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| EvalError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let mut speakers = Vec::new();
    for entry in read(dir)? {
        let entry = entry.map_err(|source| EvalError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = read(&path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    e.eq_ignore_ascii_case("flac") || e.eq_ignore_ascii_case("wav")
                })
            })
            .collect();
        files.sort();
        if !files.is_empty() {
            speakers.push(Speaker {
                id: entry.file_name().to_string_lossy().into_owned(),
                files,
            });
        }
    }
    speakers.sort_by(|a, b| a.id.cmp(&b.id));
    if speakers.is_empty() {
        return Err(EvalError::Empty(dir.to_owned()));
    }
    Ok(speakers)
}

/// One utterance's embedding, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Utterance {
    pub speaker: usize,
    pub path: PathBuf,
    pub seconds: f64,
    pub speech_s: f64,
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
    /// The embedding of the utterance's first `probe_speech_s` of speech,
    /// what the daemon embeds for a verify (None: probes use the whole).
    #[serde(skip)]
    pub probe_embedding: Option<Vec<f32>>,
    pub error: Option<String>,
    /// Too little speech (a failure to acquire, not an error).
    pub too_little_speech: bool,
}

/// Embeds every file of every speaker, whole (for templates) and, with
/// `probe_speech_s`, also its first that many seconds of speech (for
/// probes, as the daemon listens); `tick` is called after each file.
pub fn embed_all(
    pipeline: &VoicePipeline,
    speakers: &[Speaker],
    min_speech_s: f64,
    probe_speech_s: Option<f64>,
    tick: impl Fn(),
) -> Vec<Utterance> {
    let mut out = Vec::new();
    for (s, speaker) in speakers.iter().enumerate() {
        for path in &speaker.files {
            let mut u = Utterance {
                speaker: s,
                path: path.clone(),
                seconds: 0.0,
                speech_s: 0.0,
                embedding: None,
                probe_embedding: None,
                error: None,
                too_little_speech: false,
            };
            match load_file(path, MAX_UTTERANCE_S) {
                Ok(clip) => {
                    u.seconds = clip.seconds();
                    match pipeline.embed(&clip.samples, min_speech_s) {
                        Ok(print) => {
                            u.speech_s = print.speech_s;
                            u.embedding = Some(print.embedding);
                            if let Some(cut) = probe_speech_s {
                                let mut speech = VoicePipeline::speech(&clip.samples);
                                speech.truncate((cut * RATE as f64) as usize);
                                match pipeline.embed_speech(&speech) {
                                    Ok(p) => u.probe_embedding = Some(p.embedding),
                                    Err(e) => u.error = Some(e.to_string()),
                                }
                            }
                        }
                        Err(e) => {
                            u.too_little_speech = matches!(
                                e,
                                VoiceError::TooShort { .. } | VoiceError::NoSpeech { .. }
                            );
                            u.error = Some(e.to_string());
                        }
                    }
                }
                Err(e) => u.error = Some(e.to_string()),
            }
            out.push(u);
            tick();
        }
    }
    out
}

/// The split, as printed with the results.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    pub enrol_per_speaker: usize,
    /// Speakers with a template (more than `enrol` utterances).
    pub enrolled_speakers: usize,
    /// Speakers whose utterances are impostor probes only.
    pub impostor_only_speakers: usize,
    pub enrol_utterances: usize,
    pub probe_utterances: usize,
    /// Utterances that could not be embedded (too little speech or unreadable).
    pub failed_utterances: usize,
    /// Probes left out of the trials for too little speech, and their
    /// fraction of the probes (the failure-to-acquire rate).
    pub failed_to_acquire: usize,
    pub fta_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VoiceTrials {
    pub split: Split,
    #[serde(skip)]
    pub genuine: Vec<f32>,
    #[serde(skip)]
    pub impostor: Vec<f32>,
    /// Every trial with who spoke and who was claimed (`edgeid eval fused`
    /// pairs them with faces).
    #[serde(skip)]
    pub labelled: Vec<Trial>,
}

/// One probe utterance against one speaker's template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// Indices into the speakers.
    pub speaker: usize,
    pub claimed: usize,
    pub score: f32,
}

/// Templates from the first `enrol` utterances of each speaker that has
/// more, then the genuine and impostor trials of the protocol above.
pub fn trials(speakers: &[Speaker], utterances: &[Utterance], enrol: usize) -> VoiceTrials {
    let mut templates: Vec<Option<Option<Vec<f32>>>> = vec![None; speakers.len()];
    let mut is_enrol = vec![false; utterances.len()];
    for (s, speaker) in speakers.iter().enumerate() {
        if speaker.files.len() <= enrol {
            continue;
        }
        let mine: Vec<usize> = (0..utterances.len())
            .filter(|&u| utterances[u].speaker == s)
            .take(enrol)
            .collect();
        let mut sum: Option<Vec<f32>> = None;
        for &u in &mine {
            is_enrol[u] = true;
            if let Some(e) = &utterances[u].embedding {
                let acc = sum.get_or_insert_with(|| vec![0.0; e.len()]);
                acc.iter_mut().zip(e).for_each(|(a, v)| *a += v);
            }
        }
        let template = sum.map(|mut t| {
            let n = t
                .iter()
                .map(|v| v * v)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            t.iter_mut().for_each(|v| *v /= n);
            t
        });
        // Some(None): enrolled, but every enrolment utterance failed.
        templates[s] = Some(template);
    }
    let score = |u: &Utterance, t: &Option<Vec<f32>>| match (
        u.probe_embedding.as_ref().or(u.embedding.as_ref()),
        t,
    ) {
        (Some(e), Some(t)) => cosine(e, t),
        _ => f32::NEG_INFINITY,
    };
    let (mut genuine, mut impostor, mut labelled) = (Vec::new(), Vec::new(), Vec::new());
    let (mut probes, mut fta) = (0, 0);
    for (u, utt) in utterances.iter().enumerate() {
        if is_enrol[u] {
            continue;
        }
        probes += 1;
        if utt.too_little_speech {
            fta += 1;
            continue;
        }
        for (s, template) in templates.iter().enumerate() {
            let Some(template) = template else { continue };
            let score = score(utt, template);
            labelled.push(Trial {
                speaker: utt.speaker,
                claimed: s,
                score,
            });
            if s == utt.speaker {
                genuine.push(score);
            } else {
                impostor.push(score);
            }
        }
    }
    let enrolled = templates.iter().filter(|t| t.is_some()).count();
    VoiceTrials {
        split: Split {
            enrol_per_speaker: enrol,
            enrolled_speakers: enrolled,
            impostor_only_speakers: speakers.len() - enrolled,
            enrol_utterances: is_enrol.iter().filter(|&&e| e).count(),
            probe_utterances: probes,
            failed_utterances: utterances.iter().filter(|u| u.embedding.is_none()).count(),
            failed_to_acquire: fta,
            fta_rate: fta as f64 / probes.max(1) as f64,
        },
        genuine,
        impostor,
        labelled,
    }
}

/// How often the replay rule would refuse genuine speech: pairs of two
/// different utterances of one speaker whose embeddings reach the replay
/// cosine (a person repeating themselves, not a recording played back).
#[derive(Debug, Clone, Serialize)]
pub struct ReplayFigures {
    pub replay_cosine: f32,
    pub same_speaker_pairs: usize,
    pub at_or_above: usize,
    pub max_cosine: f32,
}

pub fn replay_figures(utterances: &[Utterance], replay_cosine: f32) -> ReplayFigures {
    let mut out = ReplayFigures {
        replay_cosine,
        same_speaker_pairs: 0,
        at_or_above: 0,
        max_cosine: f32::NEG_INFINITY,
    };
    for (i, a) in utterances.iter().enumerate() {
        for b in &utterances[i + 1..] {
            let (Some(ea), Some(eb)) = (&a.embedding, &b.embedding) else {
                continue;
            };
            if a.speaker != b.speaker {
                continue;
            }
            let c = cosine(ea, eb);
            out.same_speaker_pairs += 1;
            out.at_or_above += usize::from(c >= replay_cosine);
            out.max_cosine = out.max_cosine.max(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utt(speaker: usize, e: Option<[f32; 2]>) -> Utterance {
        Utterance {
            speaker,
            path: PathBuf::new(),
            seconds: 3.0,
            speech_s: 3.0,
            embedding: e.map(|e| e.to_vec()),
            probe_embedding: None,
            error: None,
            too_little_speech: false,
        }
    }

    #[test]
    fn split_and_trials_follow_the_protocol() {
        let sp = |id: &str, n: usize| Speaker {
            id: id.into(),
            files: vec![PathBuf::new(); n],
        };
        let speakers = vec![sp("a", 3), sp("b", 3), sp("c", 1)];
        let utterances = vec![
            utt(0, Some([1.0, 0.0])),
            utt(0, Some([1.0, 0.0])),
            utt(0, Some([0.8, 0.6])),
            utt(1, Some([0.0, 1.0])),
            utt(1, Some([0.0, 1.0])),
            utt(1, None),
            utt(2, Some([0.6, 0.8])),
        ];
        let t = trials(&speakers, &utterances, 2);
        assert_eq!(t.split.enrolled_speakers, 2);
        assert_eq!(t.split.impostor_only_speakers, 1);
        assert_eq!((t.split.enrol_utterances, t.split.probe_utterances), (4, 3));
        assert_eq!(t.split.failed_utterances, 1);
        // Genuine: a's 3rd vs a (0.8), b's failed 3rd vs b (−∞).
        assert_eq!(t.genuine.len(), 2);
        assert!((t.genuine[0] - 0.8).abs() < 1e-6);
        assert!(t.genuine[1].is_infinite());
        // Impostor: a3 vs b, b3 vs a, c vs a and b.
        assert_eq!(t.impostor.len(), 4);
    }

    #[test]
    fn probes_are_scored_by_their_cut_embedding_and_templates_by_the_whole() {
        let sp = |id: &str| Speaker {
            id: id.into(),
            files: vec![PathBuf::new(); 2],
        };
        let mut probe = utt(0, Some([1.0, 0.0]));
        probe.probe_embedding = Some(vec![0.6, 0.8]);
        let mut enrol = utt(0, Some([1.0, 0.0]));
        // Never used: an enrolment utterance's cut embedding.
        enrol.probe_embedding = Some(vec![0.0, 1.0]);
        let t = trials(&[sp("a")], &[enrol, probe], 1);
        assert_eq!(t.genuine.len(), 1);
        assert!((t.genuine[0] - 0.6).abs() < 1e-6);
    }
}
