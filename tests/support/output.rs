//! What edgeid prints: JSON reports and signed verdicts.

use base64::Engine;

/// The JSON a command printed on stdout.
pub fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The claims of a compact JWS (not verified: callers verify separately).
pub fn claims(verdict: &str) -> serde_json::Value {
    let payload = verdict.split('.').nth(1).expect("JWS payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}
