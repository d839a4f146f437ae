//! An image folder played as a camera at a given frame rate, looping: the
//! test camera, and a way to demo the daemon without hardware.
//!
//! The pictures are decoded once up front (a folder of a few dozen photos),
//! so playback costs a copy per frame, not a JPEG decode. A file that will
//! not decode is reported as a bad frame each time its turn comes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::capture::{FrameSource, SourceError};
use super::{Frame, ImageError, load_image};

/// More would be a video, not a test folder; keeps memory bounded.
pub const MAX_IMAGES: usize = 1000;

pub struct FolderSource {
    dir: PathBuf,
    /// Each file, decoded or with why it would not decode (the error
    /// names the file).
    images: Vec<Result<RgbImage, Arc<ImageError>>>,
    period: Duration,
    next: usize,
    due: Instant,
}

impl FolderSource {
    pub fn open(dir: &Path, fps: f64) -> Result<Self, SourceError> {
        if !(fps > 0.0 && fps <= 1000.0) {
            return Err(SourceError::Unavailable(format!(
                "frame rate {fps} is outside 0–1000"
            )));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| SourceError::io(dir.display(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(SourceError::Unavailable(format!(
                "{}: no .jpg or .png images",
                dir.display()
            )));
        }
        files.truncate(MAX_IMAGES);
        let images = files
            .into_iter()
            .map(|p| load_image(&p).map_err(Arc::new))
            .collect();
        Ok(Self {
            dir: dir.to_owned(),
            images,
            period: Duration::from_secs_f64(1.0 / fps),
            next: 0,
            due: Instant::now(),
        })
    }
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        let now = Instant::now();
        if self.due > now {
            std::thread::sleep(self.due - now);
        }
        // After a stall (a paused process) start afresh rather than burst.
        self.due = (self.due + self.period).max(Instant::now());
        // Once per pass over the images, like a camera that can be
        // unplugged: a folder that is gone ends the stream (the capture
        // then retries it).
        if self.next == 0 && !self.dir.is_dir() {
            return Err(SourceError::Unavailable(format!(
                "{}: the folder is gone",
                self.dir.display()
            )));
        }
        let image = &self.images[self.next];
        self.next = (self.next + 1) % self.images.len();
        match image {
            Ok(image) => Ok(Frame::new(image.clone())),
            Err(e) => Err(SourceError::BadImage(Arc::clone(e))),
        }
    }

    fn describe(&self) -> String {
        format!(
            "folder {} ({} images at {:.1} fps)",
            self.dir.display(),
            self.images.len(),
            1.0 / self.period.as_secs_f64()
        )
    }
}
