//! Where an inbound call to a DID goes (CONTRACT.md §3): the backend's answer for the
//! DID, cached briefly; on 404 the default `sip:{did}@{domain}`; and when the backend
//! is slow, down or answers nonsense, the default too — a backend outage must never
//! hold a call longer than the lookup timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long an answer (a route or a 404) is reused for the same DID.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// Above this many cached answers, expired ones are dropped on the next insert: memory
/// stays bounded by the call rate times [`CACHE_FOR`], however many DIDs are called.
const PRUNE_ABOVE: usize = 4096;

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

/// Where a route came from, for logs and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSource {
    /// `routing.dids` in the configuration: never asks the backend.
    Fixed,
    /// The backend's `destinationUri` for the DID.
    Backend,
    /// `sip:{did}@{default domain}`: the backend has no entry (404), or is not asked.
    Default,
    /// The default, because the backend failed, timed out or gave an unusable URI.
    Fallback,
}

impl RouteSource {
    /// The word shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Backend => "backend",
            Self::Default => "default",
            Self::Fallback => "fallback",
        }
    }
}

/// A call's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The Request-URI of the outgoing leg.
    pub uri: String,
    pub source: RouteSource,
    /// Reused from an earlier answer (no backend request).
    pub cached: bool,
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
    Ready(Result<Route, NoRoute>),
    /// The caller waits for the backend; `start_request` when no request for this DID
    /// is in flight yet (one request serves every call to the DID that arrives meanwhile).
    Ask { start_request: bool },
}

#[derive(Debug, Clone)]
enum Cached {
    Route(String),
    NoEntry,
}

/// The destination cache and the lookups in flight, each with the callers (`W`) that
/// wait for it.
#[derive(Debug)]
pub struct Destinations<W> {
    default_domain: Option<String>,
    fixed: BTreeMap<String, String>,
    ask_backend: bool,
    cache: BTreeMap<String, (Cached, Instant)>,
    in_flight: BTreeMap<String, Vec<W>>,
}

fn dialable(did: &str) -> bool {
    !did.is_empty()
        && did.len() <= 64
        && did
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '-' | '.'))
}

/// Whether a backend-given destination can be used as a Request-URI: `sip:`/`sips:`
/// and then only visible ASCII without `<`, `>` or `"` (RFC 3261 §25.1 has no unescaped
/// whitespace, control or non-ASCII character in a URI; a tab or CR/LF would corrupt
/// or inject a header).
pub fn valid_destination(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sips:")
        .or_else(|| lower.strip_prefix("sip:"));
    rest.is_some_and(|r| !r.is_empty())
        && uri
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"'))
}

/// A domain that can follow `sip:{did}@`: surrounding spaces are trimmed; a control
/// character anywhere (a CR/LF would inject a header), whitespace or non-ASCII inside,
/// or a URI delimiter makes it unusable. (`host:port` and `;transport=` parameters are
/// allowed: `lk.example:5080;transport=tcp` is a usable default.)
fn usable_domain(d: &str) -> Option<String> {
    if d.chars().any(char::is_control) {
        return None;
    }
    let d = d.trim();
    let fine = |c: char| c.is_ascii_graphic() && !matches!(c, '@' | '<' | '>' | '"' | '?');
    (!d.is_empty() && d.chars().all(fine)).then(|| d.to_owned())
}

impl<W> Destinations<W> {
    /// A cache with a default domain and fixed per-DID routes (`routing.dids`);
    /// `ask_backend` is false in file mode, where every other DID takes the default.
    pub fn new(
        default_domain: Option<String>,
        fixed: BTreeMap<String, String>,
        ask_backend: bool,
    ) -> Self {
        Self {
            default_domain: default_domain.as_deref().and_then(usable_domain),
            fixed,
            ask_backend,
            cache: BTreeMap::new(),
            in_flight: BTreeMap::new(),
        }
    }

    /// The backend's `livekitDomain` (GET /api/sip/config) replaces the configured
    /// default; returns the new domain when it changed. An unusable value is ignored.
    pub fn set_default_domain(&mut self, domain: &str) -> Option<&str> {
        let d = usable_domain(domain)?;
        if self.default_domain.as_deref() == Some(d.as_str()) {
            return None;
        }
        self.default_domain = Some(d);
        self.default_domain.as_deref()
    }

    /// The default domain now.
    pub fn default_domain(&self) -> Option<&str> {
        self.default_domain.as_deref()
    }

    fn default_route(
        &self,
        did: &str,
        source: RouteSource,
        cached: bool,
    ) -> Result<Route, NoRoute> {
        match &self.default_domain {
            Some(d) => Ok(Route {
                uri: format!("sip:{did}@{d}"),
                source,
                cached,
            }),
            None => Err(NoRoute::NoDefault {
                did: did.to_owned(),
            }),
        }
    }

    /// Where a call to `did` goes now, or that `waiter` must wait for the backend.
    pub fn lookup(&mut self, did: &str, now: Instant, waiter: W) -> Lookup {
        if !dialable(did) {
            return Lookup::Ready(Err(NoRoute::BadDid {
                did: did.to_owned(),
            }));
        }
        if let Some(uri) = self.fixed.get(did) {
            return Lookup::Ready(Ok(Route {
                uri: uri.clone(),
                source: RouteSource::Fixed,
                cached: false,
            }));
        }
        if !self.ask_backend {
            return Lookup::Ready(self.default_route(did, RouteSource::Default, false));
        }
        match self.cache.get(did) {
            Some((Cached::Route(uri), until)) if *until > now => {
                return Lookup::Ready(Ok(Route {
                    uri: uri.clone(),
                    source: RouteSource::Backend,
                    cached: true,
                }))
            }
            Some((Cached::NoEntry, until)) if *until > now => {
                return Lookup::Ready(self.default_route(did, RouteSource::Default, true))
            }
            _ => {}
        }
        let start_request = !self.in_flight.contains_key(did);
        self.in_flight
            .entry(did.to_owned())
            .or_default()
            .push(waiter);
        Lookup::Ask { start_request }
    }

    /// The callers waiting for `did` have waited long enough: they take the default
    /// now, while the request stays in flight — its answer, however late, still fills
    /// the cache for the calls after them (a backend that is always a little slower than
    /// the lookup timeout must not delay every call by the whole timeout).
    pub fn release(&mut self, did: &str) -> (Result<Route, NoRoute>, Vec<W>) {
        let waiting = self
            .in_flight
            .get_mut(did)
            .map(std::mem::take)
            .unwrap_or_default();
        (
            self.default_route(did, RouteSource::Fallback, false),
            waiting,
        )
    }

    /// The backend answered for `did` (or the lookup timed out: [`Answer::Unavailable`]).
    /// Returns the route for every caller that was waiting, and those callers.
    pub fn answer(
        &mut self,
        did: &str,
        answer: Answer,
        now: Instant,
    ) -> (Result<Route, NoRoute>, Vec<W>) {
        let waiting = self.in_flight.remove(did).unwrap_or_default();
        let route = match answer {
            Answer::Route(uri) if valid_destination(&uri) => {
                self.remember(did, Cached::Route(uri.clone()), now);
                Ok(Route {
                    uri,
                    source: RouteSource::Backend,
                    cached: false,
                })
            }
            Answer::NoEntry => {
                self.remember(did, Cached::NoEntry, now);
                self.default_route(did, RouteSource::Default, false)
            }
            Answer::Route(_) | Answer::Unavailable => {
                self.default_route(did, RouteSource::Fallback, false)
            }
        };
        (route, waiting)
    }

    fn remember(&mut self, did: &str, answer: Cached, now: Instant) {
        if self.cache.len() >= PRUNE_ABOVE {
            self.cache.retain(|_, (_, until)| *until > now);
        }
        self.cache.insert(did.to_owned(), (answer, now + CACHE_FOR));
    }

    /// Cached answers (expired ones included until the next prune).
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    fn dests() -> Destinations<u32> {
        let mut fixed = BTreeMap::new();
        fixed.insert(
            "+100".to_owned(),
            "sip:+100@other.example;transport=tcp".to_owned(),
        );
        Destinations::new(Some("lk.example".into()), fixed, true)
    }

    fn route(uri: &str, source: RouteSource, cached: bool) -> Result<Route, NoRoute> {
        Ok(Route {
            uri: uri.to_owned(),
            source,
            cached,
        })
    }

    const ASK: Lookup = Lookup::Ask {
        start_request: true,
    };
    const WAIT: Lookup = Lookup::Ask {
        start_request: false,
    };

    #[test]
    fn fixed_routes_need_no_request() {
        let mut d = dests();
        let t = Instant::now();
        assert_eq!(
            d.lookup("+100", t, 1),
            Lookup::Ready(route(
                "sip:+100@other.example;transport=tcp",
                RouteSource::Fixed,
                false
            ))
        );
    }

    #[test]
    fn file_mode_never_asks() {
        let mut d: Destinations<u32> = Destinations::new(Some("lk".into()), BTreeMap::new(), false);
        assert_eq!(
            d.lookup("+1", Instant::now(), 1),
            Lookup::Ready(route("sip:+1@lk", RouteSource::Default, false))
        );
    }

    #[test]
    fn one_request_per_did_and_answers_are_cached() {
        let mut d = dests();
        let t = Instant::now();
        assert_eq!(d.lookup("+5511", t, 1), ASK);
        assert_eq!(d.lookup("+5511", t, 2), WAIT);
        let (r, waiting) = d.answer("+5511", Answer::Route("sip:+5511@x.example".into()), t);
        assert_eq!(r, route("sip:+5511@x.example", RouteSource::Backend, false));
        assert_eq!(waiting, vec![1, 2]);
        assert_eq!(
            d.lookup("+5511", t + Duration::from_secs(1), 3),
            Lookup::Ready(route("sip:+5511@x.example", RouteSource::Backend, true))
        );
        // Expired: asked again.
        assert_eq!(d.lookup("+5511", t + CACHE_FOR, 4), ASK);
    }

    #[test]
    fn not_found_and_failures_fall_back_to_the_default() {
        let mut d = dests();
        let t = Instant::now();
        let _ = d.lookup("+1", t, 1);
        assert_eq!(
            d.answer("+1", Answer::NoEntry, t).0,
            route("sip:+1@lk.example", RouteSource::Default, false)
        );
        assert_eq!(
            d.lookup("+1", t, 2),
            Lookup::Ready(route("sip:+1@lk.example", RouteSource::Default, true))
        );
        let _ = d.lookup("+2", t, 3);
        assert_eq!(
            d.answer("+2", Answer::Unavailable, t).0,
            route("sip:+2@lk.example", RouteSource::Fallback, false)
        );
        // A failure is not cached: the next call asks again.
        assert_eq!(d.lookup("+2", t, 4), ASK);
        // A destination that is not a SIP URI (or would inject a header) is not used.
        let (r, _) = d.answer("+2", Answer::Route("http://evil\r\nX: 1".into()), t);
        assert_eq!(r, route("sip:+2@lk.example", RouteSource::Fallback, false));
        for bad in [
            "sip:",
            "sip:\t+2@x.example",
            "sip:+2@x.example\r\nX: 1",
            "sip:+2@é.example",
            "sip:+2 @x.example",
            "<sip:+2@x.example>",
        ] {
            assert!(!valid_destination(bad), "{bad:?}");
        }
        for good in ["sip:+2@x.example", "SIPS:+2@x.example:5061;transport=tls"] {
            assert!(valid_destination(good), "{good:?}");
        }
    }

    #[test]
    fn backend_domain_replaces_the_default_and_bad_dids_are_refused() {
        let mut d: Destinations<u32> = Destinations::new(None, BTreeMap::new(), true);
        let t = Instant::now();
        let _ = d.lookup("+1", t, 1);
        assert!(matches!(
            d.answer("+1", Answer::NoEntry, t).0,
            Err(NoRoute::NoDefault { .. })
        ));
        assert_eq!(
            d.set_default_domain("proj.sip.livekit.cloud"),
            Some("proj.sip.livekit.cloud")
        );
        assert_eq!(d.set_default_domain("proj.sip.livekit.cloud"), None);
        assert_eq!(d.set_default_domain("bad\r\n"), None);
        assert_eq!(d.set_default_domain("a@b"), None);
        assert_eq!(d.set_default_domain("tab\t.example"), None);
        assert_eq!(d.set_default_domain("é.example"), None);
        assert_eq!(d.set_default_domain("a b"), None);
        assert_eq!(d.default_domain(), Some("proj.sip.livekit.cloud"));
        assert!(matches!(
            d.lookup("+1@evil", t, 2),
            Lookup::Ready(Err(NoRoute::BadDid { .. }))
        ));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut d = dests();
        let t = Instant::now();
        for n in 0..PRUNE_ABOVE {
            let did = format!("+{n}");
            let _ = d.lookup(&did, t, 0);
            let _ = d.answer(&did, Answer::NoEntry, t);
        }
        let later = t + CACHE_FOR;
        let _ = d.lookup("+x", later, 0);
        let _ = d.answer("+x", Answer::NoEntry, later);
        assert_eq!(d.cached(), 1);
    }
}
