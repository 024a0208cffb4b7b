//! Where an inbound call to a DID goes (CONTRACT.md §3): the backend's answer for the
//! DID, cached briefly; on 404 the default `sip:{did}@{domain}`; and when the backend
//! is slow, down or answers nonsense, the default too — a backend outage must never
//! hold a call longer than the lookup timeout.

use crate::message::is_safe_header_value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long an answer (a route or a 404) is reused for the same DID.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// Why a call cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRoute {
    /// No destination for the DID and no default domain to build one.
    #[error("no destination for {did}: the backend has none and no default domain is set (LIVEKIT_SIP_DOMAIN / routing.default_domain, or livekitDomain from the backend)")]
    NoDefault { did: String },
    /// The DID cannot be put in a SIP URI.
    #[error("{did:?} is not a dialable number (only digits, `+`, `*`, `#`, `-`, `.` and letters)")]
    BadDid { did: String },
}

/// What the backend said about a DID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// This destination URI.
    Route(String),
    /// 404: use the default.
    NoEntry,
    /// Timeout, connection error, 5xx, invalid body: use the default, do not cache.
    Unavailable,
}

/// What [`Destinations::lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The route is known now.
    Ready(Result<String, NoRoute>),
    /// Ask the backend (the first caller for this DID starts the request).
    Ask { start_request: bool },
}

#[derive(Debug, Clone)]
enum Cached {
    Route(String),
    NoEntry,
}

/// The destination cache and the lookups in flight.
#[derive(Debug, Default)]
pub struct Destinations {
    default_domain: Option<String>,
    fixed: BTreeMap<String, String>,
    cache: BTreeMap<String, (Cached, Instant)>,
    in_flight: BTreeMap<String, usize>,
}

fn dialable(did: &str) -> bool {
    !did.is_empty()
        && did.len() <= 64
        && did
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '-' | '.'))
}

/// Whether a backend-given destination can be used as a Request-URI.
pub fn valid_destination(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    (lower.starts_with("sip:") || lower.starts_with("sips:"))
        && uri.len() > 4
        && is_safe_header_value(uri)
        && !uri.contains(' ')
}

impl Destinations {
    /// A cache with a default domain and fixed per-DID routes (file mode's `routing.dids`).
    pub fn new(default_domain: Option<String>, fixed: BTreeMap<String, String>) -> Self {
        Self {
            default_domain,
            fixed,
            ..Self::default()
        }
    }

    /// The backend's `livekitDomain` (GET /api/sip/config) replaces the configured default.
    pub fn set_default_domain(&mut self, domain: Option<String>) {
        if let Some(d) = domain.filter(|d| !d.trim().is_empty() && is_safe_header_value(d)) {
            self.default_domain = Some(d.trim().to_owned());
        }
    }

    /// The default route of `did`.
    pub fn default_route(&self, did: &str) -> Result<String, NoRoute> {
        if !dialable(did) {
            return Err(NoRoute::BadDid {
                did: did.to_owned(),
            });
        }
        match &self.default_domain {
            Some(d) => Ok(format!("sip:{did}@{d}")),
            None => Err(NoRoute::NoDefault {
                did: did.to_owned(),
            }),
        }
    }

    /// Where a call to `did` goes now, or that the backend must be asked.
    pub fn lookup(&mut self, did: &str, now: Instant) -> Lookup {
        if !dialable(did) {
            return Lookup::Ready(Err(NoRoute::BadDid {
                did: did.to_owned(),
            }));
        }
        if let Some(uri) = self.fixed.get(did) {
            return Lookup::Ready(Ok(uri.clone()));
        }
        match self.cache.get(did) {
            Some((Cached::Route(uri), until)) if *until > now => {
                return Lookup::Ready(Ok(uri.clone()))
            }
            Some((Cached::NoEntry, until)) if *until > now => {
                return Lookup::Ready(self.default_route(did))
            }
            _ => {}
        }
        let waiting = self.in_flight.entry(did.to_owned()).or_insert(0);
        *waiting += 1;
        Lookup::Ask {
            start_request: *waiting == 1,
        }
    }

    /// The backend answered for `did` (or the lookup timed out: [`Answer::Unavailable`]).
    /// Returns the route for every call that was waiting, and how many were.
    pub fn answer(
        &mut self,
        did: &str,
        answer: Answer,
        now: Instant,
    ) -> (Result<String, NoRoute>, usize) {
        let waiting = self.in_flight.remove(did).unwrap_or(0);
        let route = match answer {
            Answer::Route(uri) if valid_destination(&uri) => {
                self.cache.insert(
                    did.to_owned(),
                    (Cached::Route(uri.clone()), now + CACHE_FOR),
                );
                Ok(uri)
            }
            Answer::NoEntry => {
                self.cache
                    .insert(did.to_owned(), (Cached::NoEntry, now + CACHE_FOR));
                self.default_route(did)
            }
            Answer::Route(_) | Answer::Unavailable => self.default_route(did),
        };
        (route, waiting)
    }

    /// Drops expired answers (bounded memory however many DIDs are called).
    pub fn prune(&mut self, now: Instant) {
        self.cache.retain(|_, (_, until)| *until > now);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    fn dests() -> Destinations {
        let mut fixed = BTreeMap::new();
        fixed.insert(
            "+100".to_owned(),
            "sip:+100@other.example;transport=tcp".to_owned(),
        );
        Destinations::new(Some("lk.example".into()), fixed)
    }

    #[test]
    fn fixed_routes_need_no_request() {
        let mut d = dests();
        let t = Instant::now();
        assert_eq!(
            d.lookup("+100", t),
            Lookup::Ready(Ok("sip:+100@other.example;transport=tcp".into()))
        );
    }

    #[test]
    fn one_request_per_did_and_answers_are_cached() {
        let mut d = dests();
        let t = Instant::now();
        assert_eq!(
            d.lookup("+5511", t),
            Lookup::Ask {
                start_request: true
            }
        );
        assert_eq!(
            d.lookup("+5511", t),
            Lookup::Ask {
                start_request: false
            }
        );
        let (route, n) = d.answer("+5511", Answer::Route("sip:+5511@x.example".into()), t);
        assert_eq!(route, Ok("sip:+5511@x.example".into()));
        assert_eq!(n, 2);
        assert_eq!(
            d.lookup("+5511", t + Duration::from_secs(1)),
            Lookup::Ready(Ok("sip:+5511@x.example".into()))
        );
        // Expired: asked again.
        assert_eq!(
            d.lookup("+5511", t + CACHE_FOR),
            Lookup::Ask {
                start_request: true
            }
        );
    }

    #[test]
    fn not_found_and_failures_fall_back_to_the_default() {
        let mut d = dests();
        let t = Instant::now();
        let _ = d.lookup("+1", t);
        assert_eq!(
            d.answer("+1", Answer::NoEntry, t).0,
            Ok("sip:+1@lk.example".into())
        );
        assert_eq!(
            d.lookup("+1", t),
            Lookup::Ready(Ok("sip:+1@lk.example".into()))
        );
        let _ = d.lookup("+2", t);
        assert_eq!(
            d.answer("+2", Answer::Unavailable, t).0,
            Ok("sip:+2@lk.example".into())
        );
        // A failure is not cached: the next call asks again.
        assert_eq!(
            d.lookup("+2", t),
            Lookup::Ask {
                start_request: true
            }
        );
        // A destination that is not a SIP URI (or would inject a header) is not used.
        let (r, _) = d.answer("+2", Answer::Route("http://evil\r\nX: 1".into()), t);
        assert_eq!(r, Ok("sip:+2@lk.example".into()));
    }

    #[test]
    fn backend_domain_replaces_the_default_and_bad_dids_are_refused() {
        let mut d = Destinations::new(None, BTreeMap::new());
        assert!(matches!(
            d.default_route("+1"),
            Err(NoRoute::NoDefault { .. })
        ));
        d.set_default_domain(Some("proj.sip.livekit.cloud".into()));
        assert_eq!(
            d.default_route("+1"),
            Ok("sip:+1@proj.sip.livekit.cloud".into())
        );
        d.set_default_domain(Some("bad\r\n".into()));
        assert_eq!(
            d.default_route("+1"),
            Ok("sip:+1@proj.sip.livekit.cloud".into())
        );
        assert!(matches!(
            d.lookup("+1@evil", Instant::now()),
            Lookup::Ready(Err(NoRoute::BadDid { .. }))
        ));
    }
}
