//! Frame sources through the capture thread: a Y4M stream on a FIFO with a
//! wrong-sized frame in it and a writer that goes away and comes back, a
//! raw I420 file, an image folder at a frame rate with a slow consumer
//! (latest frame wins), and a source that vanishes and returns.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgeid::sources::capture::{Backoff, CaptureState, SourceFactory};
use edgeid::sources::folder::FolderSource;
use edgeid::sources::raw::{RawFormat, RawSource, StreamInput};
use edgeid::sources::y4m::Y4mSource;
use edgeid::sources::{Capture, FrameSource};
use support::wait_until;

const FAST: Backoff = Backoff {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(200),
};

fn y4m_frame(w: usize, h: usize, luma: u8) -> Vec<u8> {
    let mut f = b"FRAME\n".to_vec();
    f.extend(std::iter::repeat_n(luma, w * h));
    f.extend(std::iter::repeat_n(
        128u8,
        2 * w.div_ceil(2) * h.div_ceil(2),
    ));
    f
}

#[test]
fn y4m_fifo_survives_a_bad_frame_and_a_writer_that_leaves() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fifo = tmp.path().join("cam.y4m");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let input = StreamInput::Path(fifo.clone());
    let factory: SourceFactory =
        Box::new(move || Y4mSource::open(&input).map(|s| Box::new(s) as Box<dyn FrameSource>));
    let capture = Capture::spawn(factory, FAST).expect("spawn");

    let write_session = |frames: &[Vec<u8>]| {
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open fifo for writing");
        w.write_all(b"YUV4MPEG2 W64 H48 F30:1 Ip A1:1 C420jpeg\n")
            .expect("header");
        for f in frames {
            w.write_all(f).expect("frame");
            w.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(30));
        }
    };
    let good = y4m_frame(64, 48, 200);
    let mut short = y4m_frame(64, 48, 10);
    short.truncate(short.len() - 100);
    write_session(&[
        good.clone(),
        short,
        good.clone(),
        good.clone(),
        good.clone(),
        good.clone(),
        good.clone(),
    ]);
    assert!(
        wait_until(Duration::from_secs(5), || capture.status().frames >= 4),
        "{:?}",
        capture.status()
    );
    let status = capture.status();
    assert!(
        status.bad_frames >= 1,
        "the short frame is reported: {status:?}"
    );
    assert!(
        status.last_error.as_deref().unwrap_or("").contains("frame"),
        "{status:?}"
    );
    let latest = capture.latest().expect("a frame");
    assert_eq!(latest.frame.image.dimensions(), (64, 48));
    assert!(
        latest.frame.image.get_pixel(5, 5).0[0] > 180,
        "the good frames are the ones delivered"
    );

    // The writer left: the source is retried, shown in the status, no panic.
    assert!(
        wait_until(Duration::from_secs(5), || capture.status().state
            == CaptureState::Retrying),
        "{:?}",
        capture.status()
    );
    let before = capture.status().frames;
    write_session(&[good.clone(), good]);
    assert!(
        wait_until(Duration::from_secs(5), || capture.status().frames > before),
        "frames resume after reconnection"
    );
}

#[test]
fn raw_i420_frames_decode() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("frames.i420");
    let (w, h) = (32u32, 24u32);
    let len = RawFormat::I420.frame_len(w, h);
    let mut bytes = Vec::new();
    for luma in [16u8, 235] {
        bytes.extend(std::iter::repeat_n(luma, (w * h) as usize));
        bytes.extend(std::iter::repeat_n(128u8, len - (w * h) as usize));
    }
    std::fs::write(&file, &bytes).expect("write");
    let mut src = RawSource::open(&StreamInput::Path(file), RawFormat::I420, w, h).expect("open");
    assert_eq!(
        src.next_frame().expect("frame 1").image.get_pixel(0, 0).0,
        [0, 0, 0]
    );
    assert_eq!(
        src.next_frame().expect("frame 2").image.get_pixel(0, 0).0,
        [255, 255, 255]
    );
    assert!(src.next_frame().is_err());
}

fn photo_dir(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("dir");
    for i in 0..n {
        let img = image::RgbImage::from_pixel(64, 64, image::Rgb([i as u8 * 40, 0, 0]));
        img.save(dir.join(format!("{i}.png"))).expect("png");
    }
    std::fs::write(dir.join("broken.jpg"), b"\xff\xd8 not really a jpeg").expect("broken");
}

#[test]
fn folder_camera_plays_at_its_rate_and_the_latest_frame_wins() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("photos");
    photo_dir(&dir, 3);
    let d = dir.clone();
    let factory: SourceFactory =
        Box::new(move || FolderSource::open(&d, 50.0).map(|s| Box::new(s) as Box<dyn FrameSource>));
    let capture = Capture::spawn(factory, FAST).expect("spawn");
    let first = capture
        .wait_newer(0, Duration::from_secs(5))
        .expect("first frame");
    // A slow consumer: it sleeps through several frames and gets the newest, not a backlog.
    std::thread::sleep(Duration::from_millis(300));
    let next = capture
        .wait_newer(first.seq, Duration::from_secs(1))
        .expect("next frame");
    assert!(
        next.seq >= first.seq + 5,
        "stale frames were skipped: {} → {}",
        first.seq,
        next.seq
    );
    assert!(next.frame.captured_at > first.frame.captured_at);
    let status = capture.status();
    // ~50 fps for 0.3 s plus start-up; the broken file is counted, not fatal.
    assert!(status.frames >= 10, "{status:?}");
    assert!(
        status.bad_frames >= 1
            && status
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("broken.jpg"),
        "{status:?}"
    );
}

#[test]
fn a_vanished_source_is_retried_with_backoff_until_it_returns() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("gone");
    let d = dir.clone();
    let factory: SourceFactory =
        Box::new(move || FolderSource::open(&d, 20.0).map(|s| Box::new(s) as Box<dyn FrameSource>));
    let capture = Capture::spawn(factory, FAST).expect("spawn");
    assert!(
        wait_until(Duration::from_secs(3), || capture.status().reopen_attempts
            >= 3),
        "{:?}",
        capture.status()
    );
    let status = capture.status();
    assert_eq!(status.state, CaptureState::Retrying);
    assert!(
        status.last_error.as_deref().unwrap_or("").contains("gone"),
        "{status:?}"
    );
    photo_dir(&dir, 1);
    assert!(
        capture.wait_newer(0, Duration::from_secs(5)).is_some(),
        "frames once the source is back"
    );
    assert_eq!(capture.status().state, CaptureState::Running);
}

/// A source whose code panics (the report's `fps = 1e-300` killed the
/// capture thread while the daemon looked alive): the panic is a source
/// failure, retried with back-off, and frames flow again once it stops.
#[test]
fn a_panicking_source_is_reopened_not_fatal() {
    struct Panics(u32);
    impl FrameSource for Panics {
        fn next_frame(
            &mut self,
        ) -> Result<edgeid::sources::Frame, edgeid::sources::capture::SourceError> {
            self.0 += 1;
            if self.0 <= 2 {
                panic!("a decoder bug");
            }
            Ok(edgeid::sources::Frame::new(image::RgbImage::new(64, 48)))
        }
        fn describe(&self) -> String {
            "panics at first".into()
        }
    }
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = std::sync::Arc::clone(&opened);
    let factory: SourceFactory = Box::new(move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The first two opens give a source that panics at once.
        Ok(Box::new(Panics(if n < 2 { 0 } else { 2 })) as Box<dyn FrameSource>)
    });
    let capture = Capture::spawn(factory, FAST).expect("spawn");
    assert!(
        wait_until(Duration::from_secs(5), || capture.status().frames >= 3),
        "{:?}",
        capture.status()
    );
    assert!(capture.is_alive());
    let status = capture.status();
    assert!(status.reopen_attempts >= 2, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("the source panicked: a decoder bug"),
        "{status:?}"
    );
}
