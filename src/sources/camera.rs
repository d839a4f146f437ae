//! V4L2 (UVC) cameras through the `v4l` crate: a device, a resolution and a
//! pixel format (MJPEG or YUYV), decoded to RGB.
//!
//! The device part needs the `camera` cargo feature (on by default; it
//! needs libclang at build time for v4l's bindings). The pixel-format
//! conversion does not, so it is built and tested everywhere.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::capture::SourceError;
use super::decode_image;
use super::raw::{Range, yuyv_to_rgb};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
}

impl PixelFormat {
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Mjpeg => *b"MJPG",
            Self::Yuyv => *b"YUYV",
        }
    }

    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        match &code {
            b"MJPG" | b"JPEG" => Some(Self::Mjpeg),
            b"YUYV" | b"YUY2" => Some(Self::Yuyv),
            _ => None,
        }
    }
}

/// Converts one captured buffer. UVC drivers may hand back a buffer longer
/// than the picture (padding) but never a shorter one for a whole frame.
pub fn convert(
    format: PixelFormat,
    width: u32,
    height: u32,
    data: &[u8],
) -> Result<RgbImage, SourceError> {
    match format {
        PixelFormat::Yuyv => {
            let need = (width as usize).div_ceil(2) * 4 * height as usize;
            if data.len() < need {
                return Err(SourceError::BadFrame(format!(
                    "YUYV {width}x{height} frame needs {need} bytes, the camera gave {}",
                    data.len()
                )));
            }
            // UVC YUYV is limited-range BT.601.
            Ok(yuyv_to_rgb(width, height, &data[..need], Range::Limited))
        }
        PixelFormat::Mjpeg => {
            let image = decode_image(data, "camera MJPEG frame")?;
            if image.dimensions() != (width, height) {
                return Err(SourceError::BadFrame(format!(
                    "MJPEG frame is {}x{}, the camera was set to {width}x{height}",
                    image.width(),
                    image.height()
                )));
            }
            Ok(image)
        }
    }
}

#[cfg(feature = "camera")]
pub use device::CameraSource;

#[cfg(feature = "camera")]
mod device {
    use std::path::{Path, PathBuf};

    use v4l::FourCC;
    use v4l::buffer::Type;
    use v4l::io::mmap::Stream;
    use v4l::io::traits::CaptureStream;
    use v4l::video::Capture;

    use super::{PixelFormat, convert};
    use crate::sources::Frame;
    use crate::sources::capture::{FrameSource, SourceError};

    pub struct CameraSource {
        path: PathBuf,
        format: PixelFormat,
        width: u32,
        height: u32,
        // Declared before `_device` so the stream is dropped (buffers
        // unmapped) before the device is closed.
        stream: Stream<'static>,
        _device: v4l::Device,
    }

    impl CameraSource {
        pub fn open(
            path: &Path,
            width: u32,
            height: u32,
            format: PixelFormat,
            fps: u32,
        ) -> Result<Self, SourceError> {
            let fail = |e: std::io::Error| SourceError::io(path.display(), e);
            let device = v4l::Device::with_path(path).map_err(fail)?;
            let mut wanted = device.format().map_err(fail)?;
            wanted.width = width;
            wanted.height = height;
            wanted.fourcc = FourCC::new(&format.fourcc());
            let got = device.set_format(&wanted).map_err(fail)?;
            let got_format = PixelFormat::from_fourcc(got.fourcc.repr).ok_or_else(|| {
                SourceError::Unavailable(format!(
                    "{}: the camera offers {} instead of MJPEG or YUYV",
                    path.display(),
                    got.fourcc
                ))
            })?;
            if (got.width, got.height) != (width, height) {
                tracing::warn!(
                    width = got.width,
                    height = got.height,
                    "the camera chose another resolution"
                );
            }
            if fps > 0 {
                // Not every camera accepts a rate; the one it keeps is fine.
                if let Err(e) = device.set_params(&v4l::video::capture::Parameters::with_fps(fps)) {
                    tracing::warn!(error = %e, fps, "the camera refused the frame rate");
                }
            }
            let stream = Stream::with_buffers(&device, Type::VideoCapture, 4).map_err(fail)?;
            Ok(Self {
                path: path.to_owned(),
                format: got_format,
                width: got.width,
                height: got.height,
                stream,
                _device: device,
            })
        }
    }

    impl FrameSource for CameraSource {
        fn next_frame(&mut self) -> Result<Frame, SourceError> {
            // A vanished device (unplugged) fails here: the capture thread
            // reopens it with backoff.
            let (buf, meta) = self
                .stream
                .next()
                .map_err(|e| SourceError::io(self.path.display(), e))?;
            let used = (meta.bytesused as usize).min(buf.len());
            let data = if used > 0 { &buf[..used] } else { buf };
            convert(self.format, self.width, self.height, data).map(Frame::new)
        }

        fn describe(&self) -> String {
            format!(
                "camera {} {}x{} {:?}",
                self.path.display(),
                self.width,
                self.height,
                self.format
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_buffers_convert_and_short_ones_are_refused() {
        // 2x1 frame: black then white, neutral chroma; trailing padding ignored.
        let img = convert(PixelFormat::Yuyv, 2, 1, &[16, 128, 235, 128, 0, 0]).expect("yuyv");
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
        assert!(convert(PixelFormat::Yuyv, 4, 4, &[0; 10]).is_err());
    }

    #[test]
    fn mjpeg_frames_decode_and_are_size_checked() {
        let img = RgbImage::from_pixel(64, 48, image::Rgb([200, 30, 30]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .expect("encode");
        let out = convert(PixelFormat::Mjpeg, 64, 48, &jpeg).expect("mjpeg");
        let p = out.get_pixel(10, 10).0;
        assert!(p[0] > 180 && p[1] < 60, "{p:?}");
        assert!(
            convert(PixelFormat::Mjpeg, 640, 480, &jpeg)
                .unwrap_err()
                .to_string()
                .contains("64x48")
        );
        assert!(convert(PixelFormat::Mjpeg, 64, 48, &jpeg[..jpeg.len() / 3]).is_err());
        assert_eq!(PixelFormat::from_fourcc(*b"MJPG"), Some(PixelFormat::Mjpeg));
        assert_eq!(PixelFormat::from_fourcc(*b"NV12"), None);
    }
}
