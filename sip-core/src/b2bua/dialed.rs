//! The number a caller dialed (the DID), from an inbound INVITE.
//!
//! A registration trunk sends the call to the Contact we registered
//! (`sip:<account username>@<us>;line=…`), so there the Request-URI user is the
//! account, not the number: the number is the To user. An IP trunk (or a provider that
//! rewrites the Request-URI) puts the number in the Request-URI user. So: when the
//! Request-URI is our Contact — it carries a `line=` parameter, or its user is the
//! account username of the provider the call comes from — the DID is the To user;
//! otherwise the Request-URI user, and the To user when the Request-URI has none.
//! `tel:` URIs count too; `%xx` escapes are decoded; user parameters
//! (`;phone-context=…`) are not part of the number. Whether the result is dialable is
//! the destination lookup's rule (`backend::destination`).

use super::admission::{uri_param, uri_user};
use crate::message::header_uri;

/// The DID of an INVITE to `request_uri` with To header `to`, from the provider whose
/// account username is `account` (if the call is attributed to one).
pub fn dialed_number(request_uri: &str, to: Option<&str>, account: Option<&str>) -> Option<String> {
    let to_user = to.and_then(header_uri).and_then(number_of);
    let uri_number = number_of(request_uri);
    let ours = uri_param(request_uri, "line").is_some()
        || (account.is_some() && uri_number.as_deref() == account);
    if ours {
        return to_user.or(uri_number);
    }
    uri_number.or(to_user)
}

/// The user part of a `sip:`/`sips:` URI or the number of a `tel:` URI, unescaped.
fn number_of(uri: &str) -> Option<String> {
    let raw = match uri.strip_prefix("tel:") {
        Some(rest) => rest.split(';').next().filter(|n| !n.is_empty())?,
        None => uri_user(uri)?,
    };
    unescape(raw)
}

/// `%xx` escapes decoded (RFC 3261 §25.1 `escaped`); `None` when an escape is broken
/// or decodes to something that is not visible ASCII (no number contains it).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        let c = if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()?
        } else {
            b
        };
        if !c.is_ascii_graphic() {
            return None;
        }
        out.push(char::from(c));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_to_our_contact_dials_the_to_user() {
        let to = Some("<sip:+4930123456@127.0.0.1>");
        assert_eq!(
            dialed_number("sip:alice@127.0.0.1:5060;line=abc", to, Some("alice")).as_deref(),
            Some("+4930123456")
        );
        // Our Contact without the token (a provider that drops URI parameters).
        assert_eq!(
            dialed_number("sip:alice@127.0.0.1:5060", to, Some("alice")).as_deref(),
            Some("+4930123456")
        );
    }

    #[test]
    fn an_ip_trunk_dials_the_request_uri_user() {
        let to = Some("\"Sales\" <sip:sales@provider.example>;tag=1");
        assert_eq!(
            dialed_number("sip:+4930123456@127.0.0.1", to, Some("alice")).as_deref(),
            Some("+4930123456")
        );
        assert_eq!(
            dialed_number("sip:+4930123456;phone-context=+49@127.0.0.1", None, None).as_deref(),
            Some("+4930123456")
        );
        assert_eq!(
            dialed_number("tel:+4930123456;x=y", None, None).as_deref(),
            Some("+4930123456")
        );
        assert_eq!(
            dialed_number("sip:%2B4930123456@h", None, None).as_deref(),
            Some("+4930123456")
        );
        // No user in the Request-URI: the To user.
        assert_eq!(
            dialed_number("sip:127.0.0.1", Some("sip:123@h"), None).as_deref(),
            Some("123")
        );
    }

    #[test]
    fn nothing_dialable_is_none() {
        assert_eq!(dialed_number("sip:127.0.0.1", None, None), None);
        assert_eq!(dialed_number("sip:%zz@h", None, None), None);
        assert_eq!(dialed_number("sip:%0a1@h", None, None), None);
        assert_eq!(
            dialed_number("sip:a@h;line=x", Some("garbage <"), None),
            Some("a".to_owned())
        );
    }
}
