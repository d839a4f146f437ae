//! The camera the config names, and the microphone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgeid::config::Config;

use edgeid::sources::audio::probe::probe as listen_to;
use edgeid::sources::camera_probe::{CameraProbeError, probe};
use edgeid::sources::{CameraConfig, SourceKind};

use super::report::{Check, chain};

const NAME: &str = "camera";
/// Where a UVC camera appears when `[camera] path` is not set.
const DEFAULT_DEVICE: &str = "/dev/video0";

/// The daemon cannot work without its frames: whatever the source kind,
/// a missing one fails.
pub fn camera(c: &CameraConfig) -> Check {
    match c.source {
        SourceKind::V4l2 => {
            let path = c
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVICE));
            v4l2(&path, c)
        }
        kind => stream(kind, c.path.as_deref()),
    }
}

fn v4l2(path: &Path, c: &CameraConfig) -> Check {
    let wanted = format!("{:?} {}x{}", c.pixel_format, c.width, c.height).to_uppercase();
    match probe(path, c.pixel_format, (c.width, c.height)) {
        Ok(info) => {
            let usable = info
                .formats
                .iter()
                .any(|f| f.starts_with("MJPG") || f.starts_with("YUYV"));
            let summary = format!(
                "{} ({}, {}): {}",
                path.display(),
                info.driver,
                info.card,
                info.formats.join("; ")
            );
            let check = if info.offers_wanted {
                Check::ok(NAME, summary)
            } else if usable {
                Check::warn(
                    NAME,
                    format!("{summary}; not {wanted} as configured"),
                    "set [camera] pixel_format/width/height to a listed mode (the camera picks the nearest otherwise)",
                )
            } else {
                Check::fail(
                    NAME,
                    format!("{summary}; neither MJPEG nor YUYV"),
                    "use a UVC camera that offers MJPEG or YUYV",
                )
            };
            check.with_detail(info)
        }
        Err(e @ CameraProbeError::NotFound(_)) => Check::fail(
            NAME,
            e.to_string(),
            "plug in the camera, or set [camera] path (see `ls /dev/video*`)",
        ),
        Err(e @ CameraProbeError::Query { .. }) => {
            let denied = matches!(&e, CameraProbeError::Query { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied);
            let fix = if denied {
                "run as the service user, who must be in the `video` group (scripts/provision adds it)"
            } else {
                "check the device with `v4l2-ctl --all -d` and its cable"
            };
            Check::fail(NAME, chain(&e), fix)
        }
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "set [camera] path to a V4L2 capture device",
        ),
    }
}

/// Folder, Y4M and raw sources: the path must be there (stdin is trusted).
fn stream(kind: SourceKind, path: Option<&Path>) -> Check {
    let kind = kind.as_str();
    match path {
        Some(p) if p == Path::new("-") => Check::ok(NAME, format!("{kind} frames from stdin")),
        Some(p) if p.exists() => Check::ok(NAME, format!("{kind} source {}", p.display())),
        Some(p) => Check::fail(
            NAME,
            format!("{kind} source {} does not exist", p.display()),
            "create it, or fix [camera] path",
        ),
        None => Check::fail(
            NAME,
            format!("{kind} source without a path"),
            "set [camera] path",
        ),
    }
}

/// The configured microphone (or `asked`, or "default"), listened to for
/// `listen`. Missing or silent, it fails when the config relies on it (a
/// voice policy, or `[microphone]` set) and only warns otherwise.
pub fn microphone(config: &Config, asked: Option<&str>, listen: Duration) -> Check {
    const MIC: &str = "microphone";
    let needed = config.decision.modalities.uses_voice() || config.microphone.configured();
    let problem = |finding: String, hint: &str| {
        if needed {
            Check::fail(MIC, finding, hint)
        } else {
            Check::warn(MIC, finding, hint)
        }
    };
    if let (None, Some(fifo)) = (asked, &config.microphone.fifo) {
        use std::os::unix::fs::FileTypeExt;
        return match std::fs::metadata(fifo) {
            Ok(m) if m.file_type().is_fifo() => Check::ok(
                MIC,
                format!(
                    "FIFO {} ({} Hz x {} ch raw S16LE); its writer is not checked",
                    fifo.display(),
                    config.microphone.fifo_rate,
                    config.microphone.fifo_channels
                ),
            ),
            Ok(_) => problem(
                format!("{} is not a FIFO", fifo.display()),
                "create it with mkfifo, or fix [microphone] fifo",
            ),
            Err(e) => problem(
                format!("{}: {e}", fifo.display()),
                "create it with mkfifo, or fix [microphone] fifo",
            ),
        };
    }
    let device = asked
        .or(config.microphone.device.as_deref())
        .unwrap_or("default");
    match listen_to(device, listen) {
        Ok(p) => {
            let summary = format!(
                "{:?}: {} Hz x {} ch, {:.1} s captured, level {:.1} dBFS (peak {:.2})",
                p.device, p.rate, p.channels, p.seconds, p.rms_dbfs, p.peak
            );
            let check = if p.rms_dbfs.is_finite() {
                Check::ok(MIC, summary)
            } else {
                problem(
                    format!("{summary}: digital silence"),
                    "unmute the capture channel (alsamixer, F4) or check the cable",
                )
            };
            check.with_detail(p)
        }
        Err(e) => problem(
            format!("not found or not usable: {e}"),
            if needed {
                "plug in the microphone or fix [microphone] device (`arecord -L` lists them): the voice policy needs it"
            } else {
                "plug in a microphone and set [microphone] device (`arecord -L` lists them); needed only for voice"
            },
        ),
    }
}
