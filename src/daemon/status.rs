//! The camera's state, told to systemd (`STATUS=`, shown by `systemctl
//! status edgeid`) and to the log whenever it changes: a camera unplugged
//! from a door must be visible to the technician, not only as verdicts that
//! stop coming.

use std::sync::Arc;
use std::time::Duration;

use crate::sources::capture::CaptureState;
use crate::sources::{CaptureStatus, StatusProbe};

use super::notify::Notifier;

/// How often the capture state is looked at; a state change shows within this.
const POLL: Duration = Duration::from_millis(500);

pub async fn watch_camera(probe: StatusProbe, notifier: Arc<Notifier>, device: String) {
    let mut shown: Option<CaptureState> = None;
    let mut ticker = tokio::time::interval(POLL);
    loop {
        ticker.tick().await;
        let status = probe.status();
        if shown == Some(status.state) {
            continue;
        }
        shown = Some(status.state);
        let line = describe(&device, &status);
        match status.state {
            CaptureState::Retrying => tracing::warn!(
                source = %status.source,
                attempts = status.reopen_attempts,
                error = status.last_error.as_deref().unwrap_or(""),
                "camera unavailable; retrying"
            ),
            _ => tracing::info!(state = ?status.state, source = %status.source, "camera state"),
        }
        notifier.status(&line);
    }
}

/// One line for `systemctl status`.
fn describe(device: &str, s: &CaptureStatus) -> String {
    match s.state {
        CaptureState::Starting => format!("serving as {device}; camera starting"),
        CaptureState::Running => format!("serving as {device}; camera running ({})", s.source),
        CaptureState::Retrying => format!(
            "serving as {device}; camera unavailable, retrying (attempt {}): {}",
            s.reopen_attempts,
            s.last_error.as_deref().unwrap_or("no error recorded")
        ),
        CaptureState::Stopped => format!("serving as {device}; camera stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_camera_is_described_with_its_error() {
        let s = CaptureStatus {
            state: CaptureState::Retrying,
            source: "v4l2 /dev/video0".into(),
            frames: 10,
            bad_frames: 0,
            reopen_attempts: 3,
            last_error: Some("No such device".into()),
        };
        let line = describe("door-1", &s);
        assert!(line.contains("camera unavailable"), "{line}");
        assert!(
            line.contains("attempt 3") && line.contains("No such device"),
            "{line}"
        );
    }
}
