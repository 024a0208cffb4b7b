//! Splits raw bytes into start line, normalized header fields and the rest.
//!
//! Everything RFC 3261 §7.3 allows beyond `name ":" SP* value CRLF` is undone here: LF-only line endings (§7.5 leniency),
//! leading CRLFs (§7.5), folded lines (§7.3.1: CRLF followed by SP/HTAB continues the
//! value), whitespace before the colon, and compact names (§7.3.3).

use super::limits::{ViaCount, MAX_HEADERS};
use super::names::is_token;
use super::syntax::trim_ws;
use super::{is_safe_header_value, Headers, ParseError};

/// The header section of a message, normalized, and what follows it.
#[derive(Debug)]
pub(crate) struct Head<'a> {
    /// The start line without its line ending, trimmed.
    pub(crate) start_line: &'a str,
    /// Header fields: canonical names, trimmed and unfolded values.
    pub(crate) headers: Headers,
    /// Everything after the empty line that ends the header section.
    pub(crate) rest: &'a [u8],
}

/// Splits `bytes` into a [`Head`].
pub(crate) fn split_head(bytes: &[u8]) -> Result<Head<'_>, ParseError> {
    let mut lines = Lines { bytes, pos: 0 };

    // RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives on streams).
    let start_line = loop {
        match lines.next_line()? {
            Some("") => continue,
            Some(line) => break line,
            None => return Err(malformed("empty message")),
        }
    };
    if !is_safe_header_value(start_line) {
        return Err(malformed("start line contains a control character"));
    }

    // One buffer for all header text: the head is never longer than the input.
    let mut headers = Headers::with_capacity(16, bytes.len());
    // The limits of `check_limits`, counted on the way (one pass, not two).
    let mut lines_seen = 0usize;
    let mut vias = ViaCount::default();
    loop {
        let Some(line) = lines.next_line()? else {
            return Err(malformed("no empty line ends the header section"));
        };
        if line.is_empty() {
            break;
        }
        lines_seen += 1;
        if lines_seen > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders { limit: MAX_HEADERS });
        }
        vias.line(line.as_bytes())?;
        if !is_safe_header_value(line) {
            return Err(malformed(format!(
                "header line {} contains a control character",
                excerpt(line)
            )));
        }
        if line.starts_with([' ', '\t']) {
            // A folded continuation: the line break and leading whitespace become
            // one space.
            if headers.is_empty() {
                return Err(malformed("continuation line before the first header"));
            }
            headers.continue_last(trim_ws(line));
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed(format!(
                "header line {} has no colon",
                excerpt(line)
            )));
        };
        let name = trim_ws(name);
        if !is_token(name) {
            return Err(malformed(format!(
                "header name {} is not a token",
                excerpt(name)
            )));
        }
        headers.push(name, trim_ws(value));
    }

    // Values are trimmed pieces joined by single spaces: no trailing whitespace.
    Ok(Head {
        start_line: trim_ws(start_line),
        headers,
        rest: lines.rest(),
    })
}

/// Iterates lines ending in LF or CRLF; the final, unterminated piece is not a line.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line without its ending; `None` when no line ending is left.
    fn next_line(&mut self) -> Result<Option<&'a str>, ParseError> {
        let Some(rest) = self.bytes.get(self.pos..) else {
            return Ok(None);
        };
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = rest.get(..lf).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.pos += lf + 1;
        std::str::from_utf8(line)
            .map(Some)
            .map_err(|_| malformed("a header line is not valid UTF-8"))
    }

    /// The bytes after the last line returned.
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

/// A [`ParseError::Malformed`] with `why`.
pub(crate) fn malformed(why: impl Into<String>) -> ParseError {
    ParseError::Malformed(why.into())
}

/// A short, escaped quote of untrusted text for error messages.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut out: String = s
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn head(s: &str) -> Head<'_> {
        split_head(s.as_bytes()).unwrap()
    }

    #[test]
    fn unfolds_trims_and_expands() {
        let h = head(
            "\r\n\r\nOPTIONS sip:a SIP/2.0\r\nSubject : hello\r\n  \t world \r\nv:SIP/2.0/UDP h\r\n\r\nbody",
        );
        assert_eq!(h.start_line, "OPTIONS sip:a SIP/2.0");
        let all: Vec<(&str, &str)> = h.headers.iter().collect();
        assert_eq!(all, [("Subject", "hello world"), ("Via", "SIP/2.0/UDP h")]);
        assert_eq!(h.rest, b"body");
    }

    #[test]
    fn lf_only_and_mixed_line_endings() {
        let h = head("OPTIONS sip:a SIP/2.0\nA: 1\r\nB: 2\n\nrest");
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.rest, b"rest");
    }

    #[test]
    fn folded_empty_first_line() {
        let h = head("OPTIONS sip:a SIP/2.0\r\nSubject:\r\n x\r\n\r\n");
        let all: Vec<(&str, &str)> = h.headers.iter().collect();
        assert_eq!(all, [("Subject", "x")]);
    }

    #[test]
    fn rejects_broken_head() {
        for bad in [
            "",
            "\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nA: 1\r\n",
            "OPTIONS sip:a SIP/2.0\r\n folded\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nNoColon\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nBad Name: 1\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\n: 1\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nA: 1\r2\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nA: \0\r\n\r\n",
        ] {
            assert!(split_head(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(split_head(b"OPTIONS sip:a SIP/2.0\r\nA: \xff\r\n\r\n").is_err());
    }

    #[test]
    fn excerpt_is_short_and_escaped() {
        assert_eq!(excerpt("a\r"), "\"a\\r\"");
        assert!(excerpt(&"x".repeat(100)).ends_with("…\""));
    }
}
