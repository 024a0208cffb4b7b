//! Small lexing helpers shared by the header readers.
//!
//! They never fail and never panic: odd input yields odd but bounded output (an
//! unterminated quote simply runs to the end), and the readers turn that into `None`.

/// Trims SP and HTAB, the only linear whitespace left after unfolding.
pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Splits `s` on `sep` where `sep` is outside double quotes and outside `<…>`.
///
/// Commas inside a quoted display name or inside a URI in angle brackets do not
/// separate Contact bindings, and semicolons inside `<…>` are URI parameters, not
/// header parameters. Backslash escapes inside quotes are honoured.
pub(crate) fn split_top_level(s: &str, sep: char) -> impl Iterator<Item = &str> + '_ {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut in_quotes = false;
        let mut escaped = false;
        let mut in_angle = false;
        for (i, c) in current.char_indices() {
            if in_quotes {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_quotes = false;
                }
                continue;
            }
            match c {
                '"' if !in_angle => in_quotes = true,
                '<' => in_angle = true,
                '>' => in_angle = false,
                c if c == sep && !in_angle => {
                    rest = current.get(i + c.len_utf8()..);
                    return current.get(..i);
                }
                _ => {}
            }
        }
        rest = None;
        Some(current)
    })
}

/// The parameters in `s` (the text after a URI or after `>`), as trimmed
/// `(name, raw value)` pairs; empty segments are skipped. Values keep their quotes.
pub(crate) fn params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
    split_top_level(s, ';').filter_map(|segment| {
        let segment = trim_ws(segment);
        if segment.is_empty() {
            return None;
        }
        Some(match segment.split_once('=') {
            Some((name, value)) => (trim_ws(name), Some(trim_ws(value))),
            None => (segment, None),
        })
    })
}

/// The raw value of parameter `name` (case-insensitive) in `s`, surrounding quotes
/// stripped; `Some("")` for a parameter without a value.
pub(crate) fn param<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    params(s)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.map_or("", strip_quotes))
}

/// `s` without one pair of surrounding double quotes, if it has them.
pub(crate) fn strip_quotes(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(s)
}

/// `s` unquoted: surrounding quotes removed and backslash escapes resolved.
pub(crate) fn unquote(s: &str) -> String {
    match s
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if escaped || c != '\\' {
                    out.push(c);
                    escaped = false;
                } else {
                    escaped = true;
                }
            }
            out
        }
        None => s.to_owned(),
    }
}

/// A `name-addr` or `addr-spec` with its header parameters (From, To, Contact,
/// Refer-To …), split but not interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameAddr<'a> {
    /// The URI, without angle brackets.
    pub(crate) uri: &'a str,
    /// Everything after the URI (or after `>`): the header parameters.
    pub(crate) params: &'a str,
}

/// Splits one `name-addr` / `addr-spec` (RFC 3261 §20.10 and §25.1).
///
/// With `<…>` the URI is what the brackets enclose and the parameters follow `>`.
/// Without them the URI ends at the first `;`, because in that form every parameter
/// belongs to the header, not the URI. `None` when there is no URI or `<` is not
/// closed.
pub(crate) fn name_addr(s: &str) -> Option<NameAddr<'_>> {
    let s = trim_ws(s);
    match find_outside_quotes(s, '<') {
        Some(open) => {
            let after_open = s.get(open + 1..)?;
            let (uri, params) = after_open.split_once('>')?;
            let uri = trim_ws(uri);
            is_plausible_uri(uri).then_some(NameAddr { uri, params })
        }
        None => {
            let (uri, params) = s.split_at(s.find(';').unwrap_or(s.len()));
            let uri = trim_ws(uri);
            // RFC 3261 §20.10: a URI with a comma must be in angle brackets.
            (is_plausible_uri(uri) && !uri.contains(',')).then_some(NameAddr { uri, params })
        }
    }
}

/// Whether `uri` could be a URI: non-empty, no whitespace, quotes or brackets, which
/// no URI contains unescaped. Catches a split that went wrong on garbage.
fn is_plausible_uri(uri: &str) -> bool {
    !uri.is_empty() && !uri.contains([' ', '\t', '"', '<', '>'])
}

/// Byte index of the first `needle` outside double quotes.
pub(crate) fn find_outside_quotes(s: &str, needle: char) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == needle {
            return Some(i);
        }
    }
    None
}

/// A `delta-seconds` value (RFC 3261 §25.1): digits only; values above `u32::MAX`
/// saturate, as RFC 3261 §20.19 asks for overlong values.
pub(crate) fn delta_seconds(s: &str) -> Option<u32> {
    let s = trim_ws(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts: Vec<_> =
            split_top_level(r#""Doe, \"J\"" <sip:a@b;x=1,2>;p=1, <sip:c@d>"#, ',').collect();
        assert_eq!(
            parts,
            vec![r#""Doe, \"J\"" <sip:a@b;x=1,2>;p=1"#, " <sip:c@d>"]
        );
        assert_eq!(split_top_level("", ',').collect::<Vec<_>>(), vec![""]);
        assert_eq!(
            split_top_level("a,", ',').collect::<Vec<_>>(),
            vec!["a", ""]
        );
        // An unterminated quote swallows the rest rather than failing.
        assert_eq!(split_top_level("\"a,b", ',').count(), 1);
    }

    #[test]
    fn params_and_quotes() {
        let p: Vec<_> = params(" ; a = 1 ;b; c=\"x;y\" ;; ").collect();
        assert_eq!(
            p,
            vec![("a", Some("1")), ("b", None), ("c", Some("\"x;y\""))]
        );
        assert_eq!(param(";TAG=abc", "tag"), Some("abc"));
        assert_eq!(param(";lr", "lr"), Some(""));
        assert_eq!(unquote(r#""a\"b\\c""#), r#"a"b\c"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn name_addr_forms() {
        let na = name_addr(r#""A <b>" <sip:a@b;lr>;tag=1"#);
        assert_eq!(
            na,
            Some(NameAddr {
                uri: "sip:a@b;lr",
                params: ";tag=1"
            })
        );
        let na = name_addr("sip:a@b;tag=2");
        assert_eq!(
            na,
            Some(NameAddr {
                uri: "sip:a@b",
                params: ";tag=2"
            })
        );
        assert_eq!(name_addr("<sip:a@b"), None);
        assert_eq!(name_addr("<>"), None);
        assert_eq!(name_addr("<sip:a@b, <>"), None);
        assert_eq!(name_addr("Alice sip:a@b"), None);
        assert_eq!(name_addr("<sip:a,b@h>").map(|n| n.uri), Some("sip:a,b@h"));
        assert_eq!(name_addr("  "), None);
    }

    #[test]
    fn delta_seconds_forms() {
        assert_eq!(delta_seconds(" 3600 "), Some(3600));
        assert_eq!(delta_seconds("99999999999"), Some(u32::MAX));
        assert_eq!(delta_seconds("-1"), None);
        assert_eq!(delta_seconds("1h"), None);
        assert_eq!(delta_seconds(""), None);
    }
}
