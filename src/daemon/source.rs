//! Builds the capture source the `[camera]` section describes.

use std::path::PathBuf;
use std::time::Duration;

use super::config::{CameraConfig, SourceKind};
use crate::sources::capture::{Backoff, FrameSource, SourceError, SourceFactory};
use crate::sources::folder::FolderSource;
use crate::sources::raw::{RawSource, StreamInput};
use crate::sources::y4m::Y4mSource;

pub fn backoff(c: &CameraConfig) -> Backoff {
    Backoff {
        initial: Duration::from_millis(c.retry_initial_ms),
        max: Duration::from_millis(c.retry_max_ms),
    }
}

/// A factory the capture thread calls to open (and reopen) the source.
pub fn factory(c: &CameraConfig) -> SourceFactory {
    let c = c.clone();
    Box::new(move || open(&c))
}

fn open(c: &CameraConfig) -> Result<Box<dyn FrameSource>, SourceError> {
    let path = c
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from("/dev/video0"));
    let input = StreamInput::parse(&path.to_string_lossy());
    Ok(match c.source {
        SourceKind::Folder => Box::new(FolderSource::open(&path, c.fps)?),
        SourceKind::Y4m => Box::new(Y4mSource::open(&input)?),
        SourceKind::Raw => Box::new(RawSource::open(&input, c.raw_format, c.width, c.height)?),
        SourceKind::V4l2 => open_camera(c, &path)?,
    })
}

#[cfg(feature = "camera")]
fn open_camera(
    c: &CameraConfig,
    path: &std::path::Path,
) -> Result<Box<dyn FrameSource>, SourceError> {
    let fps = c.fps.round().clamp(1.0, 240.0) as u32;
    Ok(Box::new(crate::sources::camera::CameraSource::open(
        path,
        c.width,
        c.height,
        c.pixel_format,
        fps,
    )?))
}

#[cfg(not(feature = "camera"))]
fn open_camera(_: &CameraConfig, _: &std::path::Path) -> Result<Box<dyn FrameSource>, SourceError> {
    Err(SourceError::Unavailable(
        "this edgeid was built without the `camera` feature: use a y4m, raw or folder source"
            .into(),
    ))
}
