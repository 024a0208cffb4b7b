//! [`Headers`] lookups and the small readers the core needs.
//!
//! Our own parsers instead of `rsip`'s typed headers: those fail on multi-binding
//! Contact, quoted parameters and IPv6 Via, and return only the first match.

use super::names::canonical_name;
use super::syntax::{delta_seconds, name_addr, param, split_top_level, trim_ws};
use super::{ContactBinding, Headers, Via};

impl Headers {
    /// The value of the first header called `name` (case-insensitive; compact or long
    /// form, so `get("i")` finds `Call-ID`).
    pub fn get(&self, name: &str) -> Option<&str> {
        let wanted = canonical_name(name);
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v)
    }

    /// The values of every header called `name`, in order — one item per header line,
    /// not split at commas.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.named(name)
    }

    /// The topmost Via: the first value of the first Via header (RFC 3261 §8.1.3.3,
    /// §18.1.2). `None` when absent or when its sent-protocol or sent-by is malformed.
    pub fn top_via(&self) -> Option<Via> {
        let first = split_top_level(self.get("Via")?, ',').next()?;
        Via::parse(first)
    }

    /// The Call-ID; `None` when absent or empty.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID").filter(|v| !v.is_empty())
    }

    /// The CSeq as `(sequence number, method)`; `None` when absent or not
    /// `number SP method` (RFC 3261 §20.16).
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut words = self
            .get("CSeq")?
            .split([' ', '\t'])
            .filter(|w| !w.is_empty());
        let (Some(number), Some(method), None) = (words.next(), words.next(), words.next()) else {
            return None;
        };
        if !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((number.parse().ok()?, method))
    }

    /// Whether CSeq's sequence number is 2^31 or more, which RFC 3261 §8.1.1.5 forbids
    /// ("MUST be less than 2**31"); a number of any length counts, so a value past
    /// `u32` (which [`Headers::cseq`] cannot read) is caught too.
    pub fn cseq_out_of_range(&self) -> bool {
        let Some(number) = self
            .get("CSeq")
            .and_then(|v| v.split([' ', '\t']).find(|w| !w.is_empty()))
        else {
            return false;
        };
        number.bytes().all(|b| b.is_ascii_digit())
            && number.parse::<u64>().map_or(true, |n| n >= 1 << 31)
    }

    /// The `tag` parameter of From (a header parameter — a `tag` inside `<…>` belongs to
    /// the URI and is not the dialog tag).
    pub fn from_tag(&self) -> Option<&str> {
        tag_of(self.get("From")?)
    }

    /// The `tag` parameter of To; see [`Headers::from_tag`].
    pub fn to_tag(&self) -> Option<&str> {
        tag_of(self.get("To")?)
    }

    /// Every binding of every Contact header, in order (RFC 3261 §20.10).
    ///
    /// A header line is split at commas outside quotes and outside `<…>`, so a
    /// registrar's 200 OK listing several bindings yields each. Bindings that have no
    /// URI are skipped. The wildcard `Contact: *` (RFC 3261 §10.2.2) yields a binding
    /// whose `uri` is `"*"`, so that "remove all bindings" stays distinguishable from
    /// "no Contact".
    pub fn contacts(&self) -> Vec<ContactBinding> {
        self.get_all("Contact")
            .flat_map(|line| split_top_level(line, ','))
            .filter_map(ContactBinding::parse)
            .collect()
    }

    /// The Expires header as delta-seconds (RFC 3261 §20.19).
    pub fn expires(&self) -> Option<u32> {
        delta_seconds(self.get("Expires")?)
    }

    /// The Min-Expires header as delta-seconds (RFC 3261 §20.23), from a 423 response.
    pub fn min_expires(&self) -> Option<u32> {
        delta_seconds(self.get("Min-Expires")?)
    }

    /// The seconds of a Retry-After header (RFC 3261 §20.33), ignoring its comment and
    /// parameters: `120 (I'm in a meeting);duration=60` → 120.
    pub fn retry_after(&self) -> Option<u32> {
        let value = self.get("Retry-After")?;
        let end = value.find(['(', ';', ' ', '\t']).unwrap_or(value.len());
        delta_seconds(value.get(..end)?)
    }
}

/// The `tag` header parameter of a From or To value, if non-empty.
fn tag_of(value: &str) -> Option<&str> {
    let addr = name_addr(value)?;
    param(addr.params, "tag")
        .map(trim_ws)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().copied().collect()
    }

    #[test]
    fn cseq_at_or_above_2_pow_31_is_out_of_range() {
        let cseq = |v: &str| headers(&[("CSeq", v)]).cseq_out_of_range();
        assert!(!cseq("1 REGISTER"));
        assert!(!cseq("2147483647 OPTIONS"));
        assert!(cseq("2147483648 OPTIONS"));
        assert!(cseq("4294967296 OPTIONS"));
        assert!(cseq("99999999999999999999999999 OPTIONS"));
        // Not a number at all is another defect, not this one.
        assert!(!cseq("x OPTIONS"));
        assert!(!headers(&[]).cseq_out_of_range());
    }

    #[test]
    fn get_is_case_insensitive_and_accepts_compact_names() {
        let h = headers(&[
            ("Call-ID", "abc"),
            ("Via", "SIP/2.0/UDP a"),
            ("Via", "SIP/2.0/UDP b"),
        ]);
        assert_eq!(h.get("call-id"), Some("abc"));
        assert_eq!(h.get("i"), Some("abc"));
        assert_eq!(h.get("I"), Some("abc"));
        assert_eq!(h.get("v"), Some("SIP/2.0/UDP a"));
        assert_eq!(
            h.get_all("VIA").collect::<Vec<_>>(),
            ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
        );
        assert_eq!(h.get("To"), None);
        assert_eq!(h.get_all("m").count(), 0);
    }

    #[test]
    fn call_id_and_cseq() {
        let h = headers(&[("Call-ID", "x@y"), ("CSeq", "  42 \t INVITE ")]);
        assert_eq!(h.call_id(), Some("x@y"));
        assert_eq!(h.cseq(), Some((42, "INVITE")));
        for bad in [
            "",
            "INVITE",
            "x INVITE",
            "-1 INVITE",
            "1 INVITE extra",
            "99999999999 BYE",
        ] {
            assert_eq!(headers(&[("CSeq", bad)]).cseq(), None, "{bad:?}");
        }
        assert_eq!(headers(&[("Call-ID", "")]).call_id(), None);
    }

    #[test]
    fn tags_are_header_params_not_uri_params() {
        let h = headers(&[
            (
                "From",
                "\"Alice; <x>\" <sip:alice@example.com;tag=uri>;tag=real",
            ),
            ("To", "<sip:bob@example.com;tag=uri>"),
        ]);
        assert_eq!(h.from_tag(), Some("real"));
        assert_eq!(h.to_tag(), None);

        // addr-spec form: every parameter belongs to the header.
        let h = headers(&[
            ("From", "sip:alice@example.com ; TAG = t1 ;x"),
            ("To", "sip:b@c;tag="),
        ]);
        assert_eq!(h.from_tag(), Some("t1"));
        assert_eq!(h.to_tag(), None);
    }

    #[test]
    fn expires_min_expires_retry_after() {
        let h = headers(&[
            ("Expires", " 3600 "),
            ("Min-Expires", "600"),
            ("Retry-After", "120 (I'm in a meeting);duration=60"),
        ]);
        assert_eq!(h.expires(), Some(3600));
        assert_eq!(h.min_expires(), Some(600));
        assert_eq!(h.retry_after(), Some(120));
        assert_eq!(
            headers(&[("Retry-After", "18000;duration=3600")]).retry_after(),
            Some(18000)
        );
        assert_eq!(headers(&[("Retry-After", "5(x)")]).retry_after(), Some(5));
        assert_eq!(headers(&[("Retry-After", "soon")]).retry_after(), None);
        assert_eq!(headers(&[("Expires", "Thu, 01 Dec 1994")]).expires(), None);
        assert_eq!(headers(&[]).expires(), None);
    }

    #[test]
    fn top_via_takes_first_value_of_first_header() {
        let h = headers(&[
            (
                "Via",
                "SIP/2.0/UDP first.example.com;branch=z9hG4bK1, SIP/2.0/TCP second;branch=z9hG4bK2",
            ),
            ("Via", "SIP/2.0/UDP third;branch=z9hG4bK3"),
        ]);
        let via = h.top_via().unwrap();
        assert_eq!(via.host, "first.example.com");
        assert_eq!(via.branch.as_deref(), Some("z9hG4bK1"));
        assert_eq!(headers(&[]).top_via(), None);
    }
}
