//! The microphone source through real cpal and ALSA code, without
//! hardware: the test writes an ALSA configuration whose PCM `edgeid_test`
//! is a `file` plugin reading capture data from a file the test made (over
//! the `null` device, behind `plug` so any format the source asks for is
//! converted from the file's S16_LE 16 kHz mono). The source opens it by
//! name, as it would open "hw:CARD=...".

mod support;

use std::time::{Duration, Instant};

use edgeid::sources::audio::{AudioError, AudioSource, Microphone, To16kMono};
use edgeid::sources::capture::Backoff;

#[test]
fn the_microphone_source_captures_an_alsa_file_pcm_by_name() {
    let home = tempfile::tempdir().unwrap();
    let infile = home.path().join("speech.raw");
    // A recognisable signal: a slow ramp of distinct 16-bit values, 2 s.
    let samples: Vec<i16> = (0..32_000).map(|i| (i % 20_000) as i16 + 1000).collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&infile, &bytes).unwrap();
    let conf = format!(
        r#"
pcm.edgeid_test {{
    type plug
    slave {{ pcm "edgeid_file" format S16_LE rate 16000 channels 1 }}
    hint {{ show on description "edgeid test microphone" }}
}}
pcm.edgeid_file {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{}"
    format "raw"
}}
"#,
        infile.display()
    );
    std::fs::write(home.path().join(".asoundrc"), conf).unwrap();
    // SAFETY: this test binary holds this one test, which sets HOME before
    // any thread is started and before ALSA reads its configuration.
    unsafe { std::env::set_var("HOME", home.path()) };

    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    // A device that is not there: a typed error naming it, listing the others.
    match Microphone::open("no_such_microphone", 64, backoff) {
        Err(AudioError::Microphone { device, detail }) => {
            assert_eq!(device, "no_such_microphone");
            assert!(detail.contains("not found"), "{detail}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a device that does not exist"),
    }

    let mic = Microphone::open("edgeid_test", 100_000, backoff).expect("open edgeid_test");
    let (rate, channels) = mic.format();
    let mut resampler = To16kMono::new(rate, channels).expect("resampler");
    let mut got: Vec<f32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stamps = Vec::new();
    while got.len() < 40_000 && Instant::now() < deadline {
        if let Some(chunk) = mic.next_timeout(Duration::from_millis(500)) {
            stamps.push(chunk.captured_at.expect("live chunks carry a capture time"));
            got.extend(resampler.push(&chunk).expect("resample"));
        }
    }
    let status = mic.status();
    eprintln!(
        "captured {} samples at {rate} Hz x {channels}; status {status:?}",
        got.len()
    );
    assert!(got.len() >= 32_000, "captured only {} samples", got.len());
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "capture times are ordered"
    );
    // The file's ramp comes through: find its first values in order.
    let want: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let start = got
        .iter()
        .position(|&v| (v - want[0]).abs() < 2e-3)
        .expect("the file's first sample was captured");
    let n = 16_000.min(got.len() - start);
    let worst = got[start..start + n]
        .iter()
        .zip(&want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst < 2e-3,
        "captured audio differs from the file by {worst}"
    );
    drop(mic);
}
