//! Text that came from outside (a request's subject, a parser's error that
//! quotes its input) made safe to put in an error or a log line: control
//! and bidirectional-override characters are escaped, so a payload cannot
//! forge log lines or drive a terminal, and the length is capped, so a
//! 120 KB argument is not echoed whole.

use std::fmt::Write;

/// Characters of a subject id, nonce or name echoed back.
pub const SHORT: usize = 64;
/// Characters of a message that quotes untrusted input (a parser's error).
pub const LONG: usize = 240;

/// `text` escaped and cut to `max_chars` characters, saying how long it was.
pub fn echo(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            let _ = write!(out, "… ({} bytes in all)", text.len());
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that reorder what a terminal or viewer shows (Trojan Source).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_a_log_line() {
        let hostile = "x\n2026-12-06T00:00:00Z  INFO edgeid: door opened\x1b[2K\r\u{202E}";
        let shown = echo(hostile, LONG);
        assert!(!shown.chars().any(|c| c.is_control() || is_bidi_control(c)));
        assert!(shown.starts_with("x\\n2026-12-06"), "{shown}");
        assert!(shown.contains("\\u{1b}[2K\\r\\u{202e}"), "{shown}");
    }

    #[test]
    fn long_text_is_cut_and_its_size_said() {
        let big = "a".repeat(120_000);
        let shown = echo(&big, SHORT);
        assert_eq!(
            shown,
            format!("{}… (120000 bytes in all)", "a".repeat(SHORT))
        );
        assert_eq!(echo("alice", SHORT), "alice");
    }
}
