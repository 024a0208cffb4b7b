//! Header names: compact forms and canonical spelling.
//!
//! RFC 3261 §7.3.3 says compact forms MUST be accepted: the parser expands them, so
//! the rest of the core looks for one name per header. Known long names are also
//! respelled canonically (`call-id` → `Call-ID`) so that code comparing names
//! and snapshots of relayed messages see one spelling.

/// Compact forms registered with IANA ("Header Fields" registry) and their long names.
const COMPACT: &[(char, &str)] = &[
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', "Content-Type"),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', "From"),
    ('i', "Call-ID"),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', "Content-Length"),
    ('m', "Contact"),
    ('n', "Identity-Info"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', "To"),
    ('u', "Allow-Events"),
    ('v', "Via"),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Long names we respell canonically; any other name is kept as written. Sorted
/// ASCII-case-insensitively, for a binary search (a test checks it).
const KNOWN: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// The canonical form of a header name: compact forms expanded (`i` → `Call-ID`),
/// known long names respelled (`CALL-ID` → `Call-ID`), anything else unchanged.
///
/// Matching is ASCII case-insensitive, as header names are (RFC 3261 §7.3.1).
pub fn canonical_name(name: &str) -> &str {
    known_name(name).unwrap_or(name)
}

/// The canonical spelling of `name` when it is a compact form or a known long name.
pub(crate) fn known_name(name: &str) -> Option<&'static str> {
    if let Some(known) = exact_known(name) {
        return Some(known);
    }
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, long)) = COMPACT.iter().find(|(short, _)| *short == c) {
            return Some(long);
        }
    }
    KNOWN
        .binary_search_by(|known| cmp_ignore_ascii_case(known, name))
        .ok()
        .and_then(|i| KNOWN.get(i).copied())
}

/// `name` itself when it is a known long name spelled canonically: what nearly every
/// peer sends, so it is matched first and exactly (a `match` on strings compiles to a
/// length switch and comparisons, where the case-insensitive search below compares
/// byte by byte). A test keeps it equal to [`KNOWN`].
fn exact_known(name: &str) -> Option<&'static str> {
    Some(match name {
        "Accept" => "Accept",
        "Accept-Contact" => "Accept-Contact",
        "Accept-Encoding" => "Accept-Encoding",
        "Accept-Language" => "Accept-Language",
        "Alert-Info" => "Alert-Info",
        "Allow" => "Allow",
        "Allow-Events" => "Allow-Events",
        "Authentication-Info" => "Authentication-Info",
        "Authorization" => "Authorization",
        "Call-ID" => "Call-ID",
        "Call-Info" => "Call-Info",
        "Contact" => "Contact",
        "Content-Disposition" => "Content-Disposition",
        "Content-Encoding" => "Content-Encoding",
        "Content-Language" => "Content-Language",
        "Content-Length" => "Content-Length",
        "Content-Type" => "Content-Type",
        "CSeq" => "CSeq",
        "Date" => "Date",
        "Error-Info" => "Error-Info",
        "Event" => "Event",
        "Expires" => "Expires",
        "From" => "From",
        "Identity" => "Identity",
        "Identity-Info" => "Identity-Info",
        "In-Reply-To" => "In-Reply-To",
        "Max-Forwards" => "Max-Forwards",
        "MIME-Version" => "MIME-Version",
        "Min-Expires" => "Min-Expires",
        "Min-SE" => "Min-SE",
        "Organization" => "Organization",
        "P-Asserted-Identity" => "P-Asserted-Identity",
        "P-Preferred-Identity" => "P-Preferred-Identity",
        "Path" => "Path",
        "Priority" => "Priority",
        "Privacy" => "Privacy",
        "Proxy-Authenticate" => "Proxy-Authenticate",
        "Proxy-Authorization" => "Proxy-Authorization",
        "Proxy-Require" => "Proxy-Require",
        "RAck" => "RAck",
        "Reason" => "Reason",
        "Record-Route" => "Record-Route",
        "Refer-To" => "Refer-To",
        "Referred-By" => "Referred-By",
        "Reject-Contact" => "Reject-Contact",
        "Reply-To" => "Reply-To",
        "Request-Disposition" => "Request-Disposition",
        "Require" => "Require",
        "Retry-After" => "Retry-After",
        "Route" => "Route",
        "RSeq" => "RSeq",
        "Server" => "Server",
        "Service-Route" => "Service-Route",
        "Session-Expires" => "Session-Expires",
        "Subject" => "Subject",
        "Subscription-State" => "Subscription-State",
        "Supported" => "Supported",
        "Timestamp" => "Timestamp",
        "To" => "To",
        "Unsupported" => "Unsupported",
        "User-Agent" => "User-Agent",
        "Via" => "Via",
        "Warning" => "Warning",
        "WWW-Authenticate" => "WWW-Authenticate",
        _ => return None,
    })
}

/// `a` against `b` as if both were ASCII-lowercased.
fn cmp_ignore_ascii_case(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Whether `c` may appear in a `token` (RFC 3261 §25.1): header names, methods,
/// parameter names.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_sorted_for_the_binary_search() {
        for pair in KNOWN.windows(2) {
            assert_eq!(
                cmp_ignore_ascii_case(pair[0], pair[1]),
                std::cmp::Ordering::Less,
                "{} must sort before {}",
                pair[0],
                pair[1]
            );
        }
        for name in KNOWN {
            assert_eq!(known_name(&name.to_ascii_uppercase()), Some(*name));
            assert_eq!(exact_known(name), Some(*name), "exact_known lacks {name}");
        }
    }

    #[test]
    fn compact_forms_expand_case_insensitively() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("V"), "Via");
        assert_eq!(canonical_name("i"), "Call-ID");
        assert_eq!(canonical_name("m"), "Contact");
        assert_eq!(canonical_name("l"), "Content-Length");
        assert_eq!(canonical_name("b"), "Referred-By");
        assert_eq!(canonical_name("y"), "Identity");
        // `g`, `h`, `p`, `q`, `w`, `z` are not registered: left alone.
        assert_eq!(canonical_name("q"), "q");
    }

    #[test]
    fn long_names_respelled_unknown_kept() {
        assert_eq!(canonical_name("call-id"), "Call-ID");
        assert_eq!(canonical_name("CSEQ"), "CSeq");
        assert_eq!(canonical_name("www-authenticate"), "WWW-Authenticate");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
        assert_eq!(canonical_name(""), "");
    }
}
