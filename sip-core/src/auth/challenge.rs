//! Reading `WWW-Authenticate`/`Proxy-Authenticate` values and choosing one to answer.

use std::iter::Peekable;
use std::str::Chars;

use super::{Algorithm, Challenge, ChallengeError};

/// Parses one challenge header value such as
/// `Digest realm="x", nonce="y", qop="auth", algorithm=SHA-256`.
///
/// Scheme and parameter names are case-insensitive, values may be tokens or quoted
/// strings with backslash escapes, and unknown parameters are ignored. A value that is
/// not a Digest challenge gives [`ChallengeError::NotDigest`].
///
/// # Errors
/// [`ChallengeError::NotDigest`] for another scheme, [`ChallengeError::MissingParam`]
/// without `realm` or `nonce`, [`ChallengeError::UnsupportedAlgorithm`] for an
/// algorithm we cannot do, [`ChallengeError::Malformed`] for broken syntax.
pub fn parse_challenge(value: &str) -> Result<Challenge, ChallengeError> {
    parse_raw(value)?.finish()
}

/// Picks the challenge to answer among the values of all `WWW-Authenticate` (or all
/// `Proxy-Authenticate`) headers of one response.
///
/// The strongest supported Digest challenge wins (RFC 8760 §2.4: SHA-512-256, then
/// SHA-256, then MD5), the topmost among equals. With `realm` set, only challenges for
/// that realm count.
///
/// # Errors
/// When nothing is usable, the error that says the most about why: a problem with a
/// challenge for the wanted realm, then [`ChallengeError::RealmMismatch`] naming the
/// offered realms, then problems of other values (an unsupported algorithm before a
/// malformed challenge before a foreign scheme), and [`ChallengeError::None`] when
/// there were no values.
pub fn select_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
    realm: Option<&str>,
) -> Result<Challenge, ChallengeError> {
    let wanted = realm.map(str::trim);
    let mut best: Option<Challenge> = None;
    // Errors of challenges that were for the wanted realm (or any, without a filter)
    // explain more than a realm mismatch; errors where the realm is unknown explain less.
    let mut in_realm_error: Option<ChallengeError> = None;
    let mut other_error: Option<ChallengeError> = None;
    let mut offered: Vec<String> = Vec::new();

    for value in values {
        if value.trim().is_empty() {
            continue;
        }
        let raw = match parse_raw(value) {
            Ok(raw) => raw,
            Err(e) => {
                keep_most_informative(&mut other_error, e);
                continue;
            }
        };
        if let Some(wanted) = wanted {
            match raw.realm.as_deref() {
                Some(r) if r.trim() == wanted => {}
                Some(r) => {
                    if !offered.iter().any(|o| o == r) {
                        offered.push(r.to_owned());
                    }
                    continue;
                }
                None => {
                    keep_most_informative(&mut other_error, ChallengeError::MissingParam("realm"));
                    continue;
                }
            }
        }
        match raw.finish() {
            Ok(c) => {
                let stronger = best
                    .as_ref()
                    .is_none_or(|b| c.algorithm.strength() > b.algorithm.strength());
                if stronger {
                    best = Some(c);
                }
            }
            Err(e) => keep_most_informative(&mut in_realm_error, e),
        }
    }

    if let Some(c) = best {
        return Ok(c);
    }
    if let Some(e) = in_realm_error {
        return Err(e);
    }
    if let Some(wanted) = wanted {
        if !offered.is_empty() {
            return Err(ChallengeError::RealmMismatch(
                wanted.to_owned(),
                offered.join(", "),
            ));
        }
    }
    Err(other_error.unwrap_or(ChallengeError::None))
}

/// Keeps whichever error tells the user more: a Digest challenge we could not use says
/// more than a foreign scheme, and an unsupported algorithm says the most.
fn keep_most_informative(slot: &mut Option<ChallengeError>, e: ChallengeError) {
    fn rank(e: &ChallengeError) -> u8 {
        match e {
            ChallengeError::None => 0,
            ChallengeError::NotDigest(_) => 1,
            ChallengeError::Malformed(_) | ChallengeError::MissingParam(_) => 2,
            ChallengeError::RealmMismatch(..) => 3,
            ChallengeError::UnsupportedAlgorithm(_) => 4,
        }
    }
    // Strictly greater, so that among equals the topmost header is reported.
    if slot.as_ref().is_none_or(|old| rank(&e) > rank(old)) {
        *slot = Some(e);
    }
}

/// The parameters of a Digest challenge before they are checked, so that the realm of
/// a challenge we cannot answer is still known to [`select_challenge`].
#[derive(Default)]
struct RawChallenge {
    realm: Option<String>,
    nonce: Option<String>,
    opaque: Option<String>,
    algorithm: Option<String>,
    qop: Option<String>,
    stale: Option<String>,
}

impl RawChallenge {
    fn finish(self) -> Result<Challenge, ChallengeError> {
        let realm = self.realm.ok_or(ChallengeError::MissingParam("realm"))?;
        let nonce = self.nonce.ok_or(ChallengeError::MissingParam("nonce"))?;
        let (algorithm, algorithm_explicit) = match self.algorithm {
            None => (Algorithm::Md5, false),
            Some(token) => match Algorithm::from_token(token.trim()) {
                Some(a) => (a, true),
                None => return Err(ChallengeError::UnsupportedAlgorithm(token)),
            },
        };
        let qop = self
            .qop
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned)
            .collect();
        let stale = self
            .stale
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm,
            nonce,
            opaque: self.opaque,
            algorithm,
            algorithm_explicit,
            qop,
            stale,
        })
    }
}

fn parse_raw(value: &str) -> Result<RawChallenge, ChallengeError> {
    let mut cur = Cursor {
        chars: value.chars().peekable(),
    };
    cur.skip_whitespace();
    let scheme = cur.token();
    if scheme.is_empty() {
        return Err(ChallengeError::Malformed(match cur.chars.peek() {
            None => "empty header value".to_owned(),
            Some(c) => format!("expected an auth scheme, found {c:?}"),
        }));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(ChallengeError::NotDigest(scheme));
    }

    let mut raw = RawChallenge::default();
    loop {
        cur.skip_separators();
        if cur.chars.peek().is_none() {
            break;
        }
        let name = cur.token();
        if name.is_empty() {
            let found = cur.chars.peek().copied().unwrap_or(' ');
            return Err(ChallengeError::Malformed(format!(
                "expected a parameter name, found {found:?}"
            )));
        }
        cur.skip_whitespace();
        if cur.chars.next_if_eq(&'=').is_none() {
            // A bare token starts the next challenge of a comma-joined list
            // (`Digest …, Basic realm=…`): this challenge ends here.
            break;
        }
        cur.skip_whitespace();
        let value = if cur.chars.next_if_eq(&'"').is_some() {
            cur.quoted_rest()?
        } else {
            cur.bare_value()
        };
        let slot = match name.to_ascii_lowercase().as_str() {
            "realm" => &mut raw.realm,
            "nonce" => &mut raw.nonce,
            "opaque" => &mut raw.opaque,
            "algorithm" => &mut raw.algorithm,
            "qop" => &mut raw.qop,
            "stale" => &mut raw.stale,
            _ => continue,
        };
        // RFC 7235 forbids repeated parameters; the first one is the one we answer.
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    Ok(raw)
}

/// A forward-only reader over a header value; it never indexes, so no input can panic it.
struct Cursor<'a> {
    chars: Peekable<Chars<'a>>,
}

impl Cursor<'_> {
    fn skip_whitespace(&mut self) {
        while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
    }

    fn skip_separators(&mut self) {
        while self
            .chars
            .next_if(|c| c.is_whitespace() || *c == ',')
            .is_some()
        {}
    }

    /// A scheme or parameter name: everything up to whitespace or a delimiter we parse.
    fn token(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self
            .chars
            .next_if(|c| !c.is_whitespace() && !matches!(c, ',' | '=' | '"'))
        {
            out.push(c);
        }
        out
    }

    /// An unquoted value. `=` is allowed inside because some servers send base64
    /// nonces with padding unquoted.
    fn bare_value(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.chars.next_if(|c| !c.is_whitespace() && *c != ',') {
            out.push(c);
        }
        out
    }

    /// The rest of a quoted string whose opening quote was consumed.
    fn quoted_rest(&mut self) -> Result<String, ChallengeError> {
        let mut out = String::new();
        loop {
            match self.chars.next() {
                None => {
                    return Err(ChallengeError::Malformed(
                        "unterminated quoted string".to_owned(),
                    ))
                }
                Some('"') => return Ok(out),
                Some('\\') => match self.chars.next() {
                    Some(c) => out.push(c),
                    None => {
                        return Err(ChallengeError::Malformed(
                            "quoted string ends in a lone backslash".to_owned(),
                        ))
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }
}
