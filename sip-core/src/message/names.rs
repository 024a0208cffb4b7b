//! Header names: compact forms and canonical spelling.
//!
//! RFC 3261 §7.3.3 says compact forms MUST be accepted, but `rsip` files them under
//! `Header::Other`, so we expand them before `rsip` sees the message. Known long names
//! are also respelled canonically (`call-id` → `Call-ID`) so that code comparing names
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

/// Long names we respell canonically; any other name is kept as written.
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
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, long)) = COMPACT.iter().find(|(short, _)| *short == c) {
            return long;
        }
    }
    KNOWN
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
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
