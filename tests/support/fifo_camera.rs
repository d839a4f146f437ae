//! A Y4M camera on a FIFO, fed by a thread at a steady frame rate: it
//! plays whatever clip it was last given, then holds that clip's last frame,
//! so a test can hand the daemon's camera a new clip mid-request (the one
//! that answers a challenge, say).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgeid::eval::liveness::dataset::write_y4m;
use image::RgbImage;

pub struct FifoCamera {
    pub path: PathBuf,
    queue: Arc<Mutex<(Vec<RgbImage>, usize)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FifoCamera {
    /// A FIFO at `dir/camera.y4m`, holding `rest` until given a clip.
    pub fn start(dir: &Path, rest: RgbImage, fps: f64) -> Self {
        let path = dir.join("camera.y4m");
        let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        let queue = Arc::new(Mutex::new((vec![rest], 0usize)));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s, p) = (queue.clone(), stop.clone(), path.clone());
        let thread = std::thread::spawn(move || feed(&p, &q, &s, fps));
        Self {
            path,
            queue,
            stop,
            thread: Some(thread),
        }
    }

    /// Plays `frames` from the start (then holds the last one).
    pub fn play(&self, frames: Vec<RgbImage>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        *q = (frames, 0);
    }
}

/// Writes the header once the reader is there, then a frame every 1/fps.
fn feed(path: &Path, queue: &Mutex<(Vec<RgbImage>, usize)>, stop: &AtomicBool, fps: f64) {
    // Opening for writing blocks until the daemon opens the FIFO.
    let Ok(mut out) = std::fs::OpenOptions::new().write(true).open(path) else {
        return;
    };
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut next = Instant::now();
    let mut header = true;
    while !stop.load(Ordering::Relaxed) {
        let frame = {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            let (frames, i) = &mut *q;
            let f = frames[(*i).min(frames.len() - 1)].clone();
            *i += 1;
            f
        };
        let mut bytes = Vec::new();
        if write_y4m(&mut bytes, &[frame], fps.round() as u32).is_err() {
            return;
        }
        // write_y4m writes a header per call: keep only the first.
        let body = if header {
            &bytes[..]
        } else {
            let at = bytes.iter().position(|&b| b == b'\n').map_or(0, |n| n + 1);
            &bytes[at..]
        };
        header = false;
        if out.write_all(body).and_then(|()| out.flush()).is_err() {
            return;
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

impl Drop for FifoCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblocks a writer still waiting for a reader.
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}
