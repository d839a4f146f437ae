//! What a V4L2 device offers, without capturing: for `edgeid doctor`, which
//! must tell "no camera", "a camera that cannot give MJPEG/YUYV at this
//! size" and "fine" apart before the daemon is started.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::camera::PixelFormat;

/// The device, its driver and the formats it offers.
#[derive(Debug, Clone, Serialize)]
pub struct CameraInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    /// Every format it offers, as FourCC with its frame sizes (discrete
    /// sizes, or the stepwise range's bounds), e.g. "MJPG 640x480 1280x720".
    pub formats: Vec<String>,
    /// Whether it offers `wanted` at exactly `size`.
    pub offers_wanted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CameraProbeError {
    #[error("no camera at {0} (the device node does not exist)")]
    NotFound(PathBuf),
    #[error("{} is not a V4L2 capture device", .0.display())]
    NotCapture(PathBuf),
    #[error("cannot query the camera {path}")]
    Query {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("this edgeid was built without the `camera` feature (V4L2)")]
    NotBuilt,
}

/// Opens `path` read-only long enough to list its formats; checks whether
/// it offers `wanted` at `size`.
pub fn probe(
    path: &Path,
    wanted: PixelFormat,
    size: (u32, u32),
) -> Result<CameraInfo, CameraProbeError> {
    if !path.exists() {
        return Err(CameraProbeError::NotFound(path.to_owned()));
    }
    imp::probe(path, wanted, size)
}

#[cfg(feature = "camera")]
mod imp {
    use std::path::Path;

    use v4l::capability::Flags;
    use v4l::framesize::FrameSizeEnum;
    use v4l::video::Capture;

    use super::{CameraInfo, CameraProbeError, PixelFormat};

    pub fn probe(
        path: &Path,
        wanted: PixelFormat,
        size: (u32, u32),
    ) -> Result<CameraInfo, CameraProbeError> {
        let query = |source| CameraProbeError::Query {
            path: path.to_owned(),
            source,
        };
        let device = v4l::Device::with_path(path).map_err(query)?;
        let caps = device.query_caps().map_err(query)?;
        if !caps.capabilities.contains(Flags::VIDEO_CAPTURE) {
            return Err(CameraProbeError::NotCapture(path.to_owned()));
        }
        let mut formats = Vec::new();
        let mut offers_wanted = false;
        for description in device.enum_formats().map_err(query)? {
            let fourcc = description.fourcc;
            let sizes = device.enum_framesizes(fourcc).unwrap_or_default();
            let mut text = fourcc.str().unwrap_or("????").to_owned();
            for s in &sizes {
                let fits = match &s.size {
                    FrameSizeEnum::Discrete(d) => {
                        text.push_str(&format!(" {}x{}", d.width, d.height));
                        (d.width, d.height) == size
                    }
                    FrameSizeEnum::Stepwise(r) => {
                        text.push_str(&format!(
                            " {}x{}..{}x{}",
                            r.min_width, r.min_height, r.max_width, r.max_height
                        ));
                        (r.min_width..=r.max_width).contains(&size.0)
                            && (r.min_height..=r.max_height).contains(&size.1)
                    }
                };
                offers_wanted |= fits && PixelFormat::from_fourcc(fourcc.repr) == Some(wanted);
            }
            formats.push(text);
        }
        Ok(CameraInfo {
            path: path.to_owned(),
            driver: caps.driver,
            card: caps.card,
            formats,
            offers_wanted,
        })
    }
}

#[cfg(not(feature = "camera"))]
mod imp {
    use std::path::Path;

    use super::{CameraInfo, CameraProbeError, PixelFormat};

    pub fn probe(
        _path: &Path,
        _wanted: PixelFormat,
        _size: (u32, u32),
    ) -> Result<CameraInfo, CameraProbeError> {
        Err(CameraProbeError::NotBuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_named() {
        let e = probe(
            Path::new("/dev/no-such-video"),
            PixelFormat::Mjpeg,
            (640, 480),
        )
        .expect_err("missing");
        assert!(matches!(e, CameraProbeError::NotFound(_)));
        assert!(e.to_string().contains("/dev/no-such-video"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_camera_is_refused() {
        // /dev/null exists but answers no V4L2 ioctl.
        let e = probe(Path::new("/dev/null"), PixelFormat::Mjpeg, (640, 480)).expect_err("null");
        assert!(
            matches!(
                e,
                CameraProbeError::Query { .. } | CameraProbeError::NotBuilt
            ),
            "{e:?}"
        );
    }
}
