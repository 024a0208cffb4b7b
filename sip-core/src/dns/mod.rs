//! Name resolution as effects: the core asks ([`Output::Resolve`]), the driver answers
//! ([`crate::Input::Resolved`]). This module is the cache of answers, one per name and
//! record type, kept for their TTL, so that ten thousand accounts at one provider cause
//! one lookup per TTL. [`locate`] runs RFC 3263 over it; [`srv_order`] orders SRV
//! records.

pub mod locate;
pub mod srv_order;

use crate::io::{Answer, Output, QueryId, QueryKind, ResolveQuery};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How long an answer without a TTL (an IP literal, the hosts file) is used.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The TTLs of answers are kept within these bounds: a TTL of 0 would make every one of
/// ten thousand registrations at a provider ask again on each attempt, and a TTL of a
/// week would keep a moved provider's old address for a week.
const MIN_TTL: Duration = Duration::from_secs(5);
const MAX_TTL: Duration = Duration::from_secs(3600);

/// How long a failed lookup (a timeout, a server failure) is remembered: registrations
/// retry with their own backoff, and a failing name must not be asked in a loop.
const FAILURE_TTL: Duration = Duration::from_secs(5);

/// Who waits for a name: a registration (its slot) or a call (its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiter {
    /// The registration in this slot (its registrar or outbound proxy).
    Registration(u32),
    /// The call with this id (its destination).
    Call(u64),
}

/// What the cache knows of one name and record type at an instant.
#[derive(Debug, Clone, Copy)]
pub enum Cached<'a> {
    /// This answer, usable until the instant given.
    Ready(&'a Answer, Instant),
    /// The last lookup failed, for this reason (until the instant given).
    Failed(&'a str, Instant),
    /// Not known (never asked, expired, or being asked): see [`Dns::wait`].
    Missing,
}

#[derive(Debug)]
enum Entry {
    Resolving {
        id: QueryId,
        waiting: Vec<Waiter>,
        /// The answer this query replaces, expired: see [`Dns::get_stale`].
        stale: Option<(Answer, Instant)>,
    },
    Done {
        result: Result<Answer, String>,
        until: Instant,
    },
}

/// The answers by (record type, name), and the queries in flight.
#[derive(Debug, Default)]
pub struct Dns {
    names: BTreeMap<(QueryKind, String), Entry>,
    queries: BTreeMap<QueryId, (QueryKind, String)>,
}

impl Dns {
    /// What is known of `name`'s records of `kind` at `now`.
    pub fn get(&self, kind: QueryKind, name: &str, now: Instant) -> Cached<'_> {
        // The key is an owned String; a lookup by (kind, &str) needs one too.
        match self.names.get(&(kind, name.to_owned())) {
            Some(Entry::Done { result, until }) if *until > now => match result {
                Ok(a) => Cached::Ready(a, *until),
                Err(e) => Cached::Failed(e, *until),
            },
            _ => Cached::Missing,
        }
    }

    /// The last answer for `name`'s records of `kind`, even when its TTL has run out
    /// (RFC 8767's "serve stale"): good enough to decide where a failing request goes
    /// next while the fresh answer is asked for, not to start with.
    pub fn get_stale(&self, kind: QueryKind, name: &str) -> Option<(&Answer, Instant)> {
        match self.names.get(&(kind, name.to_owned()))? {
            Entry::Done {
                result: Ok(a),
                until,
            } => Some((a, *until)),
            Entry::Resolving {
                stale: Some((a, until)),
                ..
            } => Some((a, *until)),
            _ => None,
        }
    }

    /// Registers `waiter` as waiting for `name`'s records of `kind`, starting a query
    /// unless one is running. The waiter is told by [`Dns::answer`].
    pub fn wait(
        &mut self,
        kind: QueryKind,
        name: &str,
        waiter: Waiter,
        out: &mut VecDeque<Output>,
        next_query: &mut u64,
    ) {
        let key = (kind, name.to_owned());
        if let Some(Entry::Resolving { waiting, .. }) = self.names.get_mut(&key) {
            if !waiting.contains(&waiter) {
                waiting.push(waiter);
            }
            return;
        }
        *next_query += 1;
        let id = QueryId(*next_query);
        let stale = match self.names.remove(&key) {
            Some(Entry::Done {
                result: Ok(a),
                until,
            }) => Some((a, until)),
            _ => None,
        };
        self.names.insert(
            key.clone(),
            Entry::Resolving {
                id,
                waiting: vec![waiter],
                stale,
            },
        );
        self.queries.insert(id, key);
        out.push_back(Output::Resolve(ResolveQuery {
            id,
            host: name.to_owned(),
            kind,
        }));
    }

    /// Stores an answer; returns who was waiting for it (each then looks again).
    pub fn answer(
        &mut self,
        id: QueryId,
        result: Result<Answer, String>,
        now: Instant,
    ) -> Vec<Waiter> {
        let Some(key) = self.queries.remove(&id) else {
            return Vec::new();
        };
        let waiting = match self.names.get_mut(&key) {
            Some(Entry::Resolving {
                id: qid, waiting, ..
            }) if *qid == id => std::mem::take(waiting),
            _ => return Vec::new(),
        };
        let until = now
            + match &result {
                Ok(a) => a.ttl.unwrap_or(DEFAULT_TTL).clamp(MIN_TTL, MAX_TTL),
                Err(_) => FAILURE_TTL,
            };
        self.names.insert(key, Entry::Done { result, until });
        waiting
    }

    /// How many names are cached or being asked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;
    use crate::io::Records;

    fn srv_answer(ttl: u64) -> Answer {
        Answer {
            records: Records::Services(Vec::new()),
            ttl: Some(Duration::from_secs(ttl)),
        }
    }

    #[test]
    fn one_query_per_name_and_kind_kept_for_its_ttl_within_bounds() {
        let t0 = Instant::now();
        let mut dns = Dns::default();
        let mut out = VecDeque::new();
        let mut next = 0;
        dns.wait(
            QueryKind::Srv,
            "_sip._udp.a",
            Waiter::Registration(1),
            &mut out,
            &mut next,
        );
        dns.wait(
            QueryKind::Srv,
            "_sip._udp.a",
            Waiter::Registration(2),
            &mut out,
            &mut next,
        );
        dns.wait(
            QueryKind::Address,
            "_sip._udp.a",
            Waiter::Call(7),
            &mut out,
            &mut next,
        );
        assert_eq!(out.len(), 2, "one query per (kind, name): {out:?}");
        let woken = dns.answer(QueryId(1), Ok(srv_answer(60)), t0);
        assert_eq!(
            woken,
            vec![Waiter::Registration(1), Waiter::Registration(2)]
        );
        assert!(matches!(
            dns.get(QueryKind::Srv, "_sip._udp.a", t0),
            Cached::Ready(..)
        ));
        let later = t0 + Duration::from_secs(61);
        assert!(matches!(
            dns.get(QueryKind::Srv, "_sip._udp.a", later),
            Cached::Missing
        ));
        // A TTL of 0 is held for MIN_TTL, a week for MAX_TTL.
        dns.wait(QueryKind::Srv, "b", Waiter::Call(1), &mut out, &mut next);
        dns.answer(QueryId(3), Ok(srv_answer(0)), t0);
        assert!(matches!(
            dns.get(QueryKind::Srv, "b", t0 + MIN_TTL),
            Cached::Missing
        ));
        assert!(matches!(
            dns.get(QueryKind::Srv, "b", t0 + MIN_TTL / 2),
            Cached::Ready(..)
        ));
        // An answer nobody asked for (a stale id) changes nothing.
        assert!(dns.answer(QueryId(99), Ok(srv_answer(60)), t0).is_empty());
    }

    #[test]
    fn an_expired_answer_is_served_stale_while_it_is_asked_again() {
        let t0 = Instant::now();
        let mut dns = Dns::default();
        let mut out = VecDeque::new();
        let mut next = 0;
        dns.wait(QueryKind::Srv, "s", Waiter::Call(1), &mut out, &mut next);
        assert!(dns.get_stale(QueryKind::Srv, "s").is_none(), "nothing yet");
        dns.answer(QueryId(1), Ok(srv_answer(60)), t0);
        let later = t0 + Duration::from_secs(61);
        assert!(matches!(
            dns.get(QueryKind::Srv, "s", later),
            Cached::Missing
        ));
        assert!(dns.get_stale(QueryKind::Srv, "s").is_some());
        // Asked again: the old answer stays at hand until the new one arrives.
        dns.wait(QueryKind::Srv, "s", Waiter::Call(1), &mut out, &mut next);
        assert!(dns.get_stale(QueryKind::Srv, "s").is_some());
        dns.answer(QueryId(2), Err("timed out".into()), later);
        assert!(
            dns.get_stale(QueryKind::Srv, "s").is_none(),
            "a failure replaces it"
        );
    }

    #[test]
    fn failures_are_remembered_briefly() {
        let t0 = Instant::now();
        let mut dns = Dns::default();
        let mut out = VecDeque::new();
        let mut next = 0;
        dns.wait(
            QueryKind::Address,
            "a",
            Waiter::Call(1),
            &mut out,
            &mut next,
        );
        dns.answer(QueryId(1), Err("timed out".into()), t0);
        assert!(matches!(
            dns.get(QueryKind::Address, "a", t0),
            Cached::Failed("timed out", _)
        ));
        assert!(matches!(
            dns.get(QueryKind::Address, "a", t0 + FAILURE_TTL),
            Cached::Missing
        ));
    }
}
