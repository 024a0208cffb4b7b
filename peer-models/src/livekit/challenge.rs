//! LiveKit's digest challenge as the model plays it: `407 Proxy-Authenticate`, realm
//! `LiveKit`, MD5 without `qop`; the nonces it issued and the challenges it answered (for
//! their retransmissions), both bounded. Checked with the model crate's own digest code.

use crate::digest::{self, Algorithm, ResponseInput};
use crate::sip::Credentials;
use sip_core::message::Request;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The realm LiveKit challenges with.
pub const REALM: &str = "LiveKit";

/// How many nonces and challenge answers are remembered (a credential with an older
/// nonce is challenged afresh).
const MEMORY: usize = 1024;

/// What the credentials of an INVITE are worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// They verify.
    Good,
    /// None, not Digest, or an unknown nonce: challenge.
    Missing,
    /// A known nonce but a wrong answer: refuse (`403`).
    Bad,
}

/// Nonces issued and challenges sent.
#[derive(Debug, Clone, Default)]
pub(super) struct Challenges {
    nonces: BTreeSet<String>,
    nonce_order: VecDeque<String>,
    /// Challenges (and refusals) sent, by the INVITE's branch.
    answered: BTreeMap<String, Vec<u8>>,
    answered_order: VecDeque<String>,
}

impl Challenges {
    /// A nonce from the model's random `value`, remembered.
    pub(super) fn new_nonce(&mut self, value: u64) -> String {
        let nonce = format!("{value:016x}");
        self.nonces.insert(nonce.clone());
        self.nonce_order.push_back(nonce.clone());
        while self.nonce_order.len() > MEMORY {
            if let Some(old) = self.nonce_order.pop_front() {
                self.nonces.remove(&old);
            }
        }
        nonce
    }

    /// Remembers the answer to the INVITE with `branch`, for its retransmissions.
    pub(super) fn remember(&mut self, branch: String, resp: Vec<u8>) {
        self.answered_order.push_back(branch.clone());
        while self.answered_order.len() > MEMORY {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
        self.answered.insert(branch, resp);
    }

    /// The answer already sent to the INVITE with `branch`.
    pub(super) fn answer_for(&self, branch: &str) -> Option<&Vec<u8>> {
        self.answered.get(branch)
    }

    pub(super) fn check(&self, req: &Request, creds: &Credentials) -> Verdict {
        let Some(value) = req.headers.get("Proxy-Authorization") else {
            return Verdict::Missing;
        };
        let (scheme, p) = digest::parse_credentials(value);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        if !scheme.eq_ignore_ascii_case("Digest") || !self.nonces.contains(get("nonce")) {
            // Unknown nonce (or not a digest): challenge afresh, as for no credentials.
            return Verdict::Missing;
        }
        let algorithm_ok = p
            .get("algorithm")
            .is_none_or(|a| Algorithm::from_token(a) == Some(Algorithm::Md5));
        let expected = digest::expected_response(&ResponseInput {
            algorithm: Algorithm::Md5,
            username: &creds.username,
            realm: REALM,
            password: &creds.password,
            method: "INVITE",
            uri: get("uri"),
            nonce: get("nonce"),
            qop: None,
        });
        let good = algorithm_ok
            && get("username") == creds.username
            && get("realm") == REALM
            && get("uri") == req.uri
            && !p.contains_key("qop")
            && expected.eq_ignore_ascii_case(get("response"));
        if good {
            Verdict::Good
        } else {
            Verdict::Bad
        }
    }
}
