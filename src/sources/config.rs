//! The `[camera]` section of `edgeid.toml`: which source the daemon reads,
//! and how it retries one that fails; and the source factory it describes.
//! Unknown keys are refused (serde names the key) and every value has a
//! documented default (`edgeid.toml.example`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::camera::PixelFormat;
use super::capture::{Backoff, FrameSource, SourceError, SourceFactory};
use super::folder::FolderSource;
use super::frame::{MAX_FRAME_MEMORY, MAX_SIDE, frame_memory};
use super::raw::{RawFormat, RawSource, StreamInput};
use super::y4m::Y4mSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A V4L2 (UVC) camera.
    V4l2,
    /// YUV4MPEG2 frames from a file, FIFO or stdin ("-").
    Y4m,
    /// Raw RGB24 / YUYV / I420 frames of `width`×`height` from a file, FIFO or stdin.
    Raw,
    /// An image folder played at `fps`, looping.
    Folder,
}

impl SourceKind {
    /// The name in the config file ("v4l2", "y4m", "raw", "folder").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4l2 => "v4l2",
            Self::Y4m => "y4m",
            Self::Raw => "raw",
            Self::Folder => "folder",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    pub source: SourceKind,
    /// Device (v4l2), file / FIFO / "-" (y4m, raw) or directory (folder).
    pub path: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    /// Frames per second asked of a camera, or the folder's playback rate.
    pub fps: f64,
    /// Camera pixel format: "mjpeg" or "yuyv".
    pub pixel_format: PixelFormat,
    /// Raw stream layout: "rgb24", "yuyv" or "i420".
    pub raw_format: RawFormat,
    /// First wait before reopening a failed source; doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::V4l2,
            path: None,
            width: 640,
            height: 480,
            fps: 15.0,
            pixel_format: PixelFormat::Mjpeg,
            raw_format: RawFormat::I420,
            retry_initial_ms: 100,
            retry_max_ms: 5000,
        }
    }
}

/// A value in `[camera]` no source can work with; each names its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CameraConfigError {
    #[error("camera.path is required for camera.source = {}", .0.as_str())]
    PathRequired(SourceKind),
    #[error("camera.width and camera.height must be 1..=8192")]
    Size,
    #[error(
        "camera.width × camera.height in camera.raw_format would take {} MiB a frame, more than the {} MiB a frame may use",
        .0 / (1024 * 1024), MAX_FRAME_MEMORY / (1024 * 1024)
    )]
    FrameMemory(u64),
    #[error("camera.fps must be in [0.1, 240] (it is {0})")]
    Fps(f64),
    #[error(
        "camera.retry_initial_ms must be ≥ 1 and ≤ camera.retry_max_ms, which must be ≤ 600000"
    )]
    Retry,
}

impl CameraConfig {
    pub fn validate(&self) -> Result<(), CameraConfigError> {
        match self.source {
            SourceKind::Folder | SourceKind::Y4m | SourceKind::Raw if self.path.is_none() => {
                return Err(CameraConfigError::PathRequired(self.source));
            }
            _ => {}
        }
        if self.width == 0 || self.height == 0 || self.width > MAX_SIDE || self.height > MAX_SIDE {
            return Err(CameraConfigError::Size);
        }
        if self.source == SourceKind::Raw {
            let input = self.raw_format.frame_len(self.width, self.height) as u64;
            let needed = frame_memory(self.width, self.height, input);
            if needed > MAX_FRAME_MEMORY {
                return Err(CameraConfigError::FrameMemory(needed));
            }
        }
        // A frame interval the capture thread can sleep for: 1e-300 fps
        // would overflow it.
        if !(0.1..=240.0).contains(&self.fps) {
            return Err(CameraConfigError::Fps(self.fps));
        }
        if self.retry_initial_ms == 0
            || self.retry_max_ms < self.retry_initial_ms
            || self.retry_max_ms > 600_000
        {
            return Err(CameraConfigError::Retry);
        }
        Ok(())
    }

    /// How the capture thread waits before reopening a failed source.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.retry_initial_ms),
            max: Duration::from_millis(self.retry_max_ms),
        }
    }

    /// A factory the capture thread calls to open (and reopen) the source.
    pub fn factory(&self) -> SourceFactory {
        let c = self.clone();
        Box::new(move || c.open())
    }

    fn open(&self) -> Result<Box<dyn FrameSource>, SourceError> {
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/video0"));
        let input = StreamInput::parse(&path.to_string_lossy());
        Ok(match self.source {
            SourceKind::Folder => Box::new(FolderSource::open(&path, self.fps)?),
            SourceKind::Y4m => Box::new(Y4mSource::open(&input)?),
            SourceKind::Raw => Box::new(RawSource::open(
                &input,
                self.raw_format,
                self.width,
                self.height,
            )?),
            SourceKind::V4l2 => self.open_camera(&path)?,
        })
    }

    #[cfg(feature = "camera")]
    fn open_camera(&self, path: &Path) -> Result<Box<dyn FrameSource>, SourceError> {
        let fps = self.fps.round().clamp(1.0, 240.0) as u32;
        Ok(Box::new(super::camera::CameraSource::open(
            path,
            self.width,
            self.height,
            self.pixel_format,
            fps,
        )?))
    }

    #[cfg(not(feature = "camera"))]
    fn open_camera(&self, _: &Path) -> Result<Box<dyn FrameSource>, SourceError> {
        Err(SourceError::Unavailable(
            "this edgeid was built without the `camera` feature: use a y4m, raw or folder source"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_source_needs_a_path() {
        let c = CameraConfig {
            source: SourceKind::Y4m,
            ..CameraConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "camera.path is required for camera.source = y4m"
        );
        assert!(CameraConfig::default().validate().is_ok());
    }
}
