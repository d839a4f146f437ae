//! The voice factor through the daemon: a microphone that is a FIFO of raw
//! PCM (ALSA's virtual devices deliver audio faster than real time; a pipe
//! goes at the writer's pace), D-Bus `VerifyWith` under voice and
//! face+voice (stronger than the site's `face|voice`), the replay of a probe just
//! heard, a microphone whose writer goes away mid-sentence, and
//! `EnrollStart(["voice"])` from the microphone with its progress signals.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use support::auth1::{Auth1Proxy, connect};
use support::speech::{clips, pcm16k};
use support::{Daemon, DbusDaemon, Device, claims, samples, tools};

/// A daemon config: folder camera, liveness off (the clips are voice), the
/// private bus, `face|voice`, and `fifo` as the microphone.
fn face_or_voice_config(d: &Device, bus: &DbusDaemon, fifo: &Path) -> PathBuf {
    d.write_config(
        "voice",
        &format!(
            "device_id = \"{}\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [dbus]\nenabled = true\nbus = \"{}\"\n[liveness]\nmode = \"off\"\n\
             [decision]\nmodalities = \"face|voice\"\n[microphone]\nfifo = \"{}\"\n",
            support::DEVICE,
            d.camera.display(),
            bus.address,
            fifo.display()
        ),
    )
}

/// Writes `pcm` into the FIFO (blocking until the daemon reads it), then
/// closes it: the writer goes away.
fn speak(fifo: &Path, pcm: Vec<u8>) -> std::thread::JoinHandle<()> {
    let fifo = fifo.to_owned();
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open the microphone FIFO");
        f.write_all(&pcm).expect("write speech");
    })
}

/// VerifyWith while `pcm` is spoken into the microphone after the call
/// arrived; the verdict's claims.
async fn verify_speaking(
    proxy: &Auth1Proxy<'_>,
    fifo: &Path,
    nonce: &str,
    modalities: &str,
    pcm: Vec<u8>,
) -> serde_json::Value {
    // Short enough that the request cut off mid-sentence ends soon.
    let call = proxy.verify_with("obama", nonce, 6_000, modalities);
    let fifo = fifo.to_owned();
    let speaker = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        speak(&fifo, pcm)
    };
    let (verdict, writer) = tokio::join!(call, speaker);
    let _ = writer.join();
    claims(&verdict.expect("VerifyWith"))
}

#[test]
fn voice_requests_and_voice_enrolment_through_the_daemon() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon", "espeak-ng", "mkfifo"]));
    let d = Device::with_obama(&samples, &["obama2.jpg"]);
    let audio = d.dir.join("audio");
    std::fs::create_dir(&audio).unwrap();
    let m3 = clips(&audio, "en-us+m3", 0..5);
    let f3 = clips(&audio, "en-us+f3", 0..4);
    // A voice added to obama's face enrolment (the face stays).
    let mut args = vec!["enroll", "--subject", "obama", "--voice"];
    args.extend(m3[..3].iter().map(|p| p.to_str().unwrap()));
    d.cli(&d.config, &args);

    let fifo: PathBuf = d.dir.join("mic.pcm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let bus = DbusDaemon::start(&d.dir);
    let config = face_or_voice_config(&d, &bus, &fifo);
    let daemon = Daemon::start(&d, &config, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let proxy = connect(&bus).await;
        let c = verify_speaking(&proxy, &fifo, "v-1", "voice", pcm16k(&m3[3])).await;
        assert_eq!(c["decision"], "accept", "{c}");
        assert_eq!(c["modalities"], serde_json::json!(["voice"]));
        assert_eq!(c["amr"], serde_json::json!(["vbm"]));
        assert_eq!(c["src"], "stream");

        // The same recording again: a replay of the probe just heard.
        let c = verify_speaking(&proxy, &fifo, "v-2", "voice", pcm16k(&m3[3])).await;
        let last = || d.audit_records().pop().unwrap_or_default();
        assert_eq!(c["reason"], "presentation_attack", "{}", last());
        // Another voice.
        let c = verify_speaking(&proxy, &fifo, "v-3", "voice", pcm16k(&f3[3])).await;
        assert_eq!(c["reason"], "voice_mismatch", "{c}");
        // Both factors: the face at the camera and the voice.
        let c = verify_speaking(&proxy, &fifo, "v-4", "face+voice", pcm16k(&m3[4])).await;
        assert_eq!(c["decision"], "accept", "{c}");
        assert_eq!(c["modalities"], serde_json::json!(["face", "voice"]));
        assert_eq!(c["amr"], serde_json::json!(["face", "vbm"]));
        // The microphone's writer goes away after a second of speech.
        let mut cut = pcm16k(&f3[2]);
        cut.truncate(16_000 * 2);
        let c = verify_speaking(&proxy, &fifo, "v-5", "voice", cut).await;
        assert_eq!(c["reason"], "too_little_speech", "{c}");
        let err = proxy
            .verify_with("obama", "v-7", 5000, "iris")
            .await
            .expect_err("no such policy");
        assert!(err.to_string().contains("InvalidArgument"), "{err}");

        // Voice enrolment from the microphone, with progress in seconds of speech.
        let mut progress = proxy.receive_enroll_progress().await.unwrap();
        let mut done = proxy.receive_enroll_done().await.unwrap();
        proxy
            .enroll_start("carol", &["voice"])
            .await
            .expect("EnrollStart voice");
        let speech: Vec<u8> = f3[..3].iter().flat_map(|p| pcm16k(p)).collect();
        // The person starts speaking after the prompt (audio from before
        // the enrolment started is not theirs).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let writer = speak(&fifo, speech);
        let end = tokio::time::timeout(Duration::from_secs(90), done.next())
            .await
            .expect("EnrollDone in time")
            .expect("signal");
        let _ = writer.join();
        assert_eq!(end.args().unwrap().result, "ok", "{}", daemon.log_text());
        let mut hints = Vec::new();
        while let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(200), progress.next()).await
        {
            let a = p.args().unwrap();
            hints.push((a.done, a.needed, a.hint.to_owned()));
        }
        assert!(
            hints.iter().any(|(_, needed, _)| *needed == 10),
            "{hints:?}"
        );
        assert!(
            hints.iter().any(|(_, _, h)| h == "keep speaking"),
            "{hints:?}"
        );
        assert!(
            proxy
                .list_subjects()
                .await
                .unwrap()
                .contains(&"carol".to_owned())
        );
        let err = proxy
            .enroll_start("carol", &["voice"])
            .await
            .expect_err("carol has a voice already");
        assert!(err.to_string().contains("SubjectExists"), "{err}");
    });
    daemon.stop();
    let records = d.audit_records();
    let enrol = records
        .iter()
        .rev()
        .find(|r| r["event"] == "enroll")
        .expect("the voice enrolment's record");
    assert_eq!(enrol["detail"]["modality"], "voice");
    assert_eq!(enrol["detail"]["origin"], "dbus microphone enrollment");
    assert!(enrol["detail"]["speech_s"].as_f64().unwrap() >= 10.0);
}

/// A microphone missing at start-up does not stop the daemon (the face
/// door keeps working); a voice request is answered `timeout` with the
/// cause in the audit.
#[test]
fn a_missing_microphone_leaves_the_face_working_and_voice_requests_time_out() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon"]));
    let d = Device::with_obama(&samples, &["obama2.jpg"]);
    let bus = DbusDaemon::start(&d.dir);
    let config = face_or_voice_config(&d, &bus, &d.dir.join("no-such-fifo"));
    let daemon = Daemon::start(&d, &config, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let proxy = connect(&bus).await;
        let face = claims(
            &proxy
                .verify_with("obama", "m-1", 5000, "face")
                .await
                .unwrap(),
        );
        assert_eq!(face["decision"], "accept", "{face}");
        let voice = claims(
            &proxy
                .verify_with("obama", "m-2", 2000, "voice")
                .await
                .unwrap(),
        );
        assert_eq!(voice["reason"], "timeout", "{voice}");
    });
    assert!(
        daemon
            .log_text()
            .contains("the microphone could not be opened")
    );
    daemon.stop();
    let last = d.audit_records().pop().unwrap();
    assert_eq!(
        last["detail"]["voice"]["detail"]["cause"], "voice_unavailable",
        "{last}"
    );
}
