//! Bad audio in: each a typed error or a usable clip, never a panic, and
//! a long input refused without being read whole.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgeid::infer::{Manifest, default_backend};
use edgeid::sources::audio::{AudioError, AudioFile, AudioSource, PcmStream, load_clip, load_file};
use edgeid::voice::{VoiceEmbedder, VoiceError, VoicePipeline};

fn wav(dir: &Path, name: &str, rate: u32, channels: u16, bits: u16, samples: &[f32]) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("create wav");
    let max = f32::from(1u16 << (bits - 1)) - 1.0;
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * max).round() as i32;
        if bits == 8 {
            w.write_sample(v as i8).expect("write");
        } else {
            w.write_sample(v as i16).expect("write");
        }
    }
    w.finalize().expect("finalize");
    path
}

fn tone(rate: u32, seconds: f32, hz: f32, amp: f32) -> Vec<f32> {
    let n = (rate as f32 * seconds) as usize;
    (0..n)
        .map(|i| amp * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
        .collect()
}

fn pipeline() -> VoicePipeline {
    let manifest = Manifest::open(&support::repo().join("models")).expect("manifest");
    VoicePipeline::new(
        VoiceEmbedder::load(&manifest, default_backend().as_ref()).expect("embedder"),
    )
}

#[test]
fn empty_and_non_audio_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        load_file(&empty, 60.0),
        Err(AudioError::Format { .. })
    ));
    let text = dir.path().join("notes.flac");
    std::fs::write(&text, "this is not audio at all, just words\n".repeat(50)).unwrap();
    let err = load_file(&text, 60.0).unwrap_err();
    assert!(matches!(err, AudioError::Format { .. }), "{err}");
    assert!(err.to_string().contains("notes.flac"), "{err}");
    let missing = dir.path().join("missing.wav");
    assert!(matches!(
        load_file(&missing, 60.0),
        Err(AudioError::Open { .. })
    ));
    // A header and no samples.
    let header_only = wav(dir.path(), "header.wav", 16_000, 1, 16, &[]);
    let err = load_file(&header_only, 60.0).unwrap_err();
    assert!(matches!(err, AudioError::Empty { .. }), "{err}");
}

#[test]
fn silence_loads_and_is_refused_as_no_speech() {
    let dir = tempfile::tempdir().unwrap();
    let silent = wav(dir.path(), "silent.wav", 16_000, 1, 16, &vec![0.0; 48_000]);
    let clip = load_file(&silent, 60.0).expect("silence is valid audio");
    assert_eq!(clip.samples.len(), 48_000);
    let err = pipeline().embed(&clip.samples, 2.0).unwrap_err();
    assert!(matches!(err, VoiceError::NoSpeech { .. }), "{err}");
}

#[test]
fn clipped_audio_gives_a_result_or_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A tone at 8x full scale, clipped to a square wave, with gaps.
    let mut samples = Vec::new();
    for _ in 0..3 {
        samples.extend(tone(16_000, 0.8, 220.0, 8.0));
        samples.extend(vec![0.0; 4000]);
    }
    let path = wav(dir.path(), "clipped.wav", 16_000, 1, 16, &samples);
    let clip = load_file(&path, 60.0).expect("clipped audio loads");
    assert!(clip.samples.iter().all(|s| s.abs() <= 1.0));
    match pipeline().embed(&clip.samples, 1.0) {
        Ok(print) => {
            assert_eq!(print.embedding.len(), 256);
            assert!(print.embedding.iter().all(|v| v.is_finite()));
        }
        Err(e) => assert!(
            matches!(e, VoiceError::NoSpeech { .. } | VoiceError::TooShort { .. }),
            "{e}"
        ),
    }
}

#[test]
fn eight_bit_and_48k_stereo_become_16k_mono() {
    let dir = tempfile::tempdir().unwrap();
    let eight = wav(
        dir.path(),
        "8bit.wav",
        8_000,
        1,
        8,
        &tone(8_000, 2.0, 300.0, 0.5),
    );
    let clip = load_file(&eight, 60.0).expect("8-bit wav");
    assert_eq!(clip.samples.len(), 32_000, "2 s at 16 kHz");
    let peak = clip.samples[1000..31_000]
        .iter()
        .fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5).abs() < 0.05, "peak {peak}");

    // 48 kHz stereo: 1 kHz in the left channel only, silence on the right;
    // the mono mix is half the amplitude, the tone survives resampling.
    let left = tone(48_000, 3.0, 1000.0, 0.8);
    let stereo: Vec<f32> = left.iter().flat_map(|&l| [l, 0.0]).collect();
    let path = wav(dir.path(), "stereo.wav", 48_000, 2, 16, &stereo);
    let clip = load_file(&path, 60.0).expect("48 kHz stereo");
    assert_eq!(clip.samples.len(), 48_000, "3 s at 16 kHz, no sample lost");
    // Same level and same waveform (up to the resampler's sub-sample phase).
    let expected = tone(16_000, 3.0, 1000.0, 0.4);
    let (got, want) = (&clip.samples[400..47_600], &expected[400..47_600]);
    let rms = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    let ratio = rms(got) / rms(want);
    assert!((ratio - 1.0).abs() < 0.01, "level ratio {ratio}");
    let corr = got.iter().zip(want).map(|(a, b)| a * b).sum::<f32>()
        / (rms(got) * rms(want) * got.len() as f32);
    assert!(corr > 0.98, "correlation {corr}");
}

#[test]
fn a_truncated_file_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let path = wav(
        dir.path(),
        "full.wav",
        16_000,
        1,
        16,
        &tone(16_000, 2.0, 440.0, 0.3),
    );
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 1]).unwrap(); // mid-sample too
    let clip = load_file(&cut, 60.0).expect("a truncated wav still has audio");
    assert!(
        clip.samples.len() > 15_000 && clip.samples.len() < 17_000,
        "{}",
        clip.samples.len()
    );
    // Cut inside the header: an error, not a panic.
    let stub = dir.path().join("stub.wav");
    std::fs::write(&stub, &bytes[..20]).unwrap();
    assert!(load_file(&stub, 60.0).is_err());
}

#[test]
fn an_hour_long_file_is_refused_from_its_header() {
    // A WAV header declaring one hour at 48 kHz stereo (1.4 GB of data),
    // followed by only one second: refused before decoding anything.
    let dir = tempfile::tempdir().unwrap();
    let path = wav(dir.path(), "hour.wav", 48_000, 2, 16, &vec![0.1; 96_000]);
    let mut bytes = std::fs::read(&path).unwrap();
    let data_len: u32 = 3600 * 48_000 * 2 * 2;
    bytes[40..44].copy_from_slice(&data_len.to_le_bytes());
    bytes[4..8].copy_from_slice(&(data_len + 36).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let file = AudioFile::open(&path).expect("header parses");
    assert_eq!(file.declared_frames(), Some(3600 * 48_000));
    let err = load_file(&path, 60.0).unwrap_err();
    assert!(matches!(err, AudioError::TooLong { .. }), "{err}");
}

/// One hour of 16-bit mono 48 kHz tone, generated as it is read.
struct EndlessTone {
    left: u64,
    n: u64,
}

impl Read for EndlessTone {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written + 2 <= buf.len() && self.left > 0 {
            let v = (8000.0 * (self.n as f32 * 0.05).sin()) as i16;
            buf[written..written + 2].copy_from_slice(&v.to_le_bytes());
            written += 2;
            self.left -= 1;
            self.n += 1;
        }
        Ok(written)
    }
}

#[test]
fn an_hour_long_stream_is_refused_at_the_limit_without_reading_it_all() {
    let hour = EndlessTone {
        left: 3600 * 48_000,
        n: 0,
    };
    let mut stream = PcmStream::new("generated", hour, 48_000, 1).expect("stream");
    let start = Instant::now();
    let err = load_clip(&mut stream, 30.0).unwrap_err();
    assert!(matches!(err, AudioError::TooLong { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_pcm_stream_ending_mid_frame_keeps_its_whole_frames() {
    // 1000 stereo frames and one stray byte.
    let mut bytes = Vec::new();
    for i in 0..1000i16 {
        bytes.extend_from_slice(&(i * 10).to_le_bytes());
        bytes.extend_from_slice(&(-i * 10).to_le_bytes());
    }
    bytes.push(7);
    let mut stream = PcmStream::new("pipe", std::io::Cursor::new(bytes), 16_000, 2).unwrap();
    let clip = load_clip(&mut stream, 60.0).expect("whole frames");
    assert_eq!(clip.samples.len(), 1000);
    assert!(
        clip.samples.iter().all(|&s| s.abs() < 1e-6),
        "L and R cancel in the mix"
    );
    assert!(PcmStream::new("x", std::io::empty(), 0, 1).is_err());
    let mut empty = PcmStream::new("x", std::io::empty(), 16_000, 1).unwrap();
    assert!(matches!(
        load_clip(&mut empty, 60.0),
        Err(AudioError::Empty { .. })
    ));
}
