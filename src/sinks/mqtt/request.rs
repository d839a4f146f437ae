//! Requests from door controllers on `<prefix>/<device>/request`:
//! `{"mode": "verify"|"identify", "subject": "...", "nonce": "...", "timeout_ms": 2000,
//! "modalities": "face+voice"}` (`modalities`: optional, a stronger policy
//! than the site's).
//!
//! The payload is untrusted: its size is checked before parsing, unknown
//! fields are refused, the nonce is required (it binds the verdict to this
//! request); the replay guard is shared with D-Bus (`api::ReplayGuard`).

use serde::Deserialize;

use crate::api::{ApiError, check_nonce, check_subject};
use crate::decision::{Modalities, Mode};
use crate::untrusted;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub mode: Mode,
    #[serde(default)]
    pub subject: Option<String>,
    pub nonce: String,
    /// 0 or absent: the daemon's default.
    #[serde(default)]
    pub timeout_ms: u32,
    /// A stronger policy than the site's; absent: the site's.
    #[serde(default)]
    pub modalities: Option<Modalities>,
}

/// Parses and checks one request payload.
pub fn parse(payload: &[u8], max_bytes: usize) -> Result<Request, ApiError> {
    if payload.len() > max_bytes {
        return Err(ApiError::InvalidArgument(format!(
            "request of {} bytes refused: the limit is {max_bytes}",
            payload.len()
        )));
    }
    // serde's message quotes the payload (an unknown field's name): escaped,
    // so a payload cannot forge log lines or the error topic's text.
    let req: Request = serde_json::from_slice(payload).map_err(|e| {
        ApiError::InvalidArgument(format!(
            "malformed request: {}",
            untrusted::echo(&e.to_string(), untrusted::LONG)
        ))
    })?;
    check_nonce(&req.nonce)?;
    match (req.mode, &req.subject) {
        (Mode::Verify, Some(s)) => check_subject(s)?,
        (Mode::Verify, None) => {
            return Err(ApiError::InvalidArgument(
                "a verify request needs a subject".into(),
            ));
        }
        (Mode::Identify, Some(_)) => {
            return Err(ApiError::InvalidArgument(
                "an identify request takes no subject".into(),
            ));
        }
        (Mode::Identify, None) => {}
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_schema_checked() {
        let ok = parse(
            br#"{"mode":"verify","subject":"alice","nonce":"n-1"}"#,
            1024,
        )
        .expect("valid");
        assert_eq!(
            (ok.mode, ok.subject.as_deref(), ok.nonce.as_str()),
            (Mode::Verify, Some("alice"), "n-1")
        );
        assert!(
            parse(
                br#"{"mode":"identify","nonce":"n-2","timeout_ms":500}"#,
                1024
            )
            .is_ok()
        );
        let fused = parse(
            br#"{"mode":"verify","subject":"a","nonce":"n-3","modalities":"face+voice"}"#,
            1024,
        )
        .expect("modalities");
        assert_eq!(fused.modalities, Some(Modalities::FaceAndVoice));
        for bad in [
            &br#"{"mode":"verify","subject":"alice"}"#[..],
            br#"{"mode":"verify","nonce":"n"}"#,
            br#"{"mode":"identify","subject":"a","nonce":"n"}"#,
            br#"{"mode":"delete","nonce":"n"}"#,
            br#"{"mode":"identify","nonce":"n","admin":true}"#,
            br#"{"mode":"verify","subject":"a","nonce":"n","modalities":"face+face"}"#,
            br#"{"mode":"verify","subject":"a","nonce":"n","modalities":3}"#,
            br#"{"mode":"identify","nonce":""}"#,
            br#"{"mode":"identify","nonce":"has space"}"#,
            br#"{"mode":"verify","subject":"../etc","nonce":"n"}"#,
            b"\xff\xfe garbage",
            b"",
        ] {
            assert!(
                parse(bad, 1024).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!(r#"{{"mode":"identify","nonce":"{}"}}"#, "x".repeat(2000));
        assert!(
            parse(big.as_bytes(), 1024)
                .unwrap_err()
                .to_string()
                .contains("limit is 1024")
        );
    }

    /// The payload of the issue's log-injection report: an unknown field
    /// named with ESC and a newline. The refusal's text has neither.
    #[test]
    fn refusals_do_not_echo_control_characters() {
        let hostile =
            "{\"mode\":\"identify\",\"nonce\":\"n\",\"x\\u001b[2K\\nINFO edgeid: door opened\":1}";
        let e = parse(hostile.as_bytes(), 4096).expect_err("unknown field");
        let text = e.to_string();
        assert!(text.contains("unknown field"), "{text}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("\\u{1b}[2K\\nINFO"), "{text}");
    }
}
