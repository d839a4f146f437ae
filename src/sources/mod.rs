//! Sources: where pixels come from. Every source yields [`frame::Frame`]s;
//! nothing downstream knows whether a frame came from a file or a camera.
//!
//! - `frame`: the frame type.
//! - `images`: still images from files or bytes (JPEG, PNG), with EXIF
//!   orientation and a decompression-bomb guard.
//! - `y4m`, `raw`: YUV4MPEG2 and raw RGB/YUYV/I420 streams (stdin, FIFO, file).
//! - `folder`: an image folder played at a frame rate (the test camera).
//! - `camera`: V4L2 cameras (feature `camera`) and their pixel formats;
//!   `camera_probe`: what a device offers, without capturing (`doctor`).
//! - `capture`: the [`FrameSource`] trait and the capture thread with its
//!   latest-frame-wins slot, retry with backoff and status.
//! - `config`: the `[camera]` section, and the source factory it describes.
//! - `audio`: audio sources (files, PCM streams, microphone) and resampling.

pub mod audio;
pub mod camera;
pub mod camera_probe;
pub mod capture;
pub mod config;
pub mod folder;
pub mod frame;
mod image_end;
pub mod images;
pub mod raw;
pub mod y4m;

pub use capture::{Capture, CaptureStatus, FrameSource, SourceError, StatusProbe};
pub use config::{CameraConfig, CameraConfigError, SourceKind};
pub use frame::Frame;
pub use images::{ImageError, decode_image, load_image};
