//! Contact bindings, read by our own parser: `rsip`'s typed Contact fails on several
//! bindings in one header and on quoted parameters such as `+sip.instance`.

use super::syntax::{name_addr, params, trim_ws, unquote};

/// One binding of a Contact header (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactBinding {
    /// The URI without `<>`, exactly as written (URI parameters included), or `"*"`
    /// for the wildcard.
    pub uri: String,
    /// The header parameters after the URI, in order: names lower-cased, values
    /// unquoted (`+sip.instance="<urn:uuid:…>"` → `<urn:uuid:…>`), `None` for a
    /// parameter without `=`.
    pub params: Vec<(String, Option<String>)>,
    /// The `expires` parameter as delta-seconds; `None` when absent or not a number
    /// (the caller then falls back to the Expires header, RFC 3261 §10.2.4).
    pub expires: Option<u32>,
}

impl ContactBinding {
    /// Parses one binding (one comma-separated element); `None` when it has no URI.
    pub(crate) fn parse(binding: &str) -> Option<Self> {
        let binding = trim_ws(binding);
        if binding == "*" {
            return Some(Self {
                uri: "*".to_owned(),
                params: Vec::new(),
                expires: None,
            });
        }
        let addr = name_addr(binding)?;
        let params: Vec<(String, Option<String>)> = params(addr.params)
            .map(|(name, value)| (name.to_ascii_lowercase(), value.map(unquote)))
            .collect();
        let expires = params
            .iter()
            .find(|(name, _)| name == "expires")
            .and_then(|(_, value)| value.as_deref())
            .and_then(super::syntax::delta_seconds);
        Some(Self {
            uri: addr.uri.to_owned(),
            params,
            expires,
        })
    }

    /// A parameter of the URI itself (inside `<>`), e.g. `line` in
    /// `<sip:u@h;line=abc>`; case-insensitive; `Some("")` for a parameter without a
    /// value (`;lr`).
    ///
    /// URI parameters follow the host, so the search starts after the `@` that ends
    /// the userinfo (which cannot contain another): a `;` in the user part
    /// (`sip:+1555;npdi@h`) is not a URI parameter.
    pub fn uri_param(&self, name: &str) -> Option<&str> {
        let without_headers = self.uri.split('?').next().unwrap_or_default();
        let host_part = without_headers
            .split_once('@')
            .map_or(without_headers, |(_, host)| host);
        let (_, uri_params) = host_part.split_once(';')?;
        uri_params.split(';').find_map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            trim_ws(n).eq_ignore_ascii_case(name).then(|| trim_ws(v))
        })
    }

    /// The header parameter `name` (lower-case), if present: `Some(None)` for a
    /// parameter without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use crate::message::{parse, Headers, Message};

    use super::*;

    fn contacts(lines: &[&str]) -> Vec<ContactBinding> {
        lines
            .iter()
            .map(|l| ("Contact", *l))
            .collect::<Headers>()
            .contacts()
    }

    #[test]
    fn kamailio_multi_binding_200_ok() {
        let bytes = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg;rport=5070;received=127.0.0.1\r\n\
            From: <sip:alice@example.com>;tag=ft\r\n\
            To: <sip:alice@example.com>;tag=tt\r\n\
            Call-ID: reg1\r\n\
            CSeq: 2 REGISTER\r\n\
            Contact: <sip:alice@127.0.0.1:5070;line=abc>;expires=20, <sip:alice@10.0.0.1>;expires=3000\r\n\
            Server: kamailio (5.7.4 (x86_64/linux))\r\n\
            Content-Length: 0\r\n\r\n";
        let Ok(Message::Response(r)) = parse(bytes.as_bytes()) else {
            panic!("did not parse");
        };
        let c = r.headers.contacts();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].uri, "sip:alice@127.0.0.1:5070;line=abc");
        assert_eq!(c[0].uri_param("line"), Some("abc"));
        assert_eq!(c[0].expires, Some(20));
        assert_eq!(c[1].uri, "sip:alice@10.0.0.1");
        assert_eq!(c[1].uri_param("line"), None);
        assert_eq!(c[1].expires, Some(3000));
        // Our binding is found by its line parameter.
        let ours = c.iter().find(|b| b.uri_param("line") == Some("abc"));
        assert_eq!(ours.and_then(|b| b.expires), Some(20));
    }

    #[test]
    fn display_names_and_quoted_instance() {
        let c = contacts(&[
            r#""Alice, \"A\" <home>" <sip:alice@192.0.2.4;transport=tcp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1;Expires=60"#,
            "Bob <sip:bob@192.0.2.5>;q=0.7",
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].uri, "sip:alice@192.0.2.4;transport=tcp");
        assert_eq!(c[0].uri_param("TRANSPORT"), Some("tcp"));
        assert_eq!(
            c[0].params,
            vec![
                (
                    "+sip.instance".to_owned(),
                    Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>".to_owned())
                ),
                ("reg-id".to_owned(), Some("1".to_owned())),
                ("expires".to_owned(), Some("60".to_owned())),
            ]
        );
        assert_eq!(c[0].expires, Some(60));
        assert_eq!(c[1].uri, "sip:bob@192.0.2.5");
        assert_eq!(c[1].param("q"), Some(Some("0.7")));
        assert_eq!(c[1].expires, None);
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let c = contacts(&["sip:u@h;expires=60;lr", " sip:v@h , sip:w@h;expires=0"]);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].uri, "sip:u@h");
        assert_eq!(c[0].expires, Some(60));
        assert_eq!(c[0].param("lr"), Some(None));
        assert_eq!(c[0].uri_param("expires"), None);
        assert_eq!(c[1].uri, "sip:v@h");
        assert_eq!(c[2].expires, Some(0));
    }

    #[test]
    fn uri_param_skips_user_part_and_uri_headers() {
        let c = contacts(&["<sip:+1555;npdi@h;user=phone;lr?Subject=x;y=z>"]);
        assert_eq!(c[0].uri_param("npdi"), None);
        assert_eq!(c[0].uri_param("user"), Some("phone"));
        assert_eq!(c[0].uri_param("lr"), Some(""));
        assert_eq!(c[0].uri_param("y"), None);
        let c = contacts(&["<sip:[2001:db8::1]:5060;line=v6>"]);
        assert_eq!(c[0].uri_param("line"), Some("v6"));
    }

    #[test]
    fn wildcard_and_garbage() {
        let c = contacts(&[" * "]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].uri, "*");
        assert!(c[0].params.is_empty());
        // Elements without a URI are skipped; the rest still count.
        let c = contacts(&["<sip:a@b, <>, , <sip:c@d>;expires=abc"]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].uri, "sip:c@d");
        assert_eq!(c[0].expires, None);
        assert!(contacts(&[]).is_empty());
    }
}
