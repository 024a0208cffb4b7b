//! Name resolution as effects: the core asks ([`Output::Resolve`]), the driver answers
//! ([`crate::Input::Resolved`]). Answers are cached per host so that ten thousand accounts
//! at one provider cause one lookup.

use crate::io::{Output, QueryId, QueryKind, Resolution, ResolveQuery};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How long an answer is used before it is looked up again. The drivers' resolvers do
/// not hand us TTLs yet; five minutes is what most SIP stacks cache for.
const CACHE_FOR: Duration = Duration::from_secs(300);

/// Who waits for a name: a registration (its slot) or a call (its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiter {
    /// The registration in this slot (its registrar or outbound proxy).
    Registration(u32),
    /// The call with this id (its destination).
    Call(u64),
}

/// What the cache knows of a host.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Use this answer.
    Ready(Resolution),
    /// The last lookup failed (kept briefly so a failing name is not asked in a loop).
    Failed(String),
    /// A lookup is needed or under way: wait for [`Dns::answer`].
    Pending,
}

#[derive(Debug)]
enum Entry {
    Resolving {
        id: QueryId,
        waiting: Vec<Waiter>,
    },
    Done {
        result: Result<Resolution, String>,
        until: Instant,
    },
}

/// The per-host cache and the queries in flight.
#[derive(Debug, Default)]
pub struct Dns {
    hosts: BTreeMap<String, Entry>,
    queries: BTreeMap<QueryId, String>,
}

impl Dns {
    /// What is known of `host` at `now`. IP literals need no lookup but still go through
    /// the driver once, which tells us our local address towards them.
    pub fn lookup(&self, host: &str, now: Instant) -> Lookup {
        match self.hosts.get(host) {
            Some(Entry::Done { result, until }) if *until > now => match result {
                Ok(r) => Lookup::Ready(r.clone()),
                Err(e) => Lookup::Failed(e.clone()),
            },
            _ => Lookup::Pending,
        }
    }

    /// Registers `waiter` as waiting for `host`, starting a query unless one is running.
    pub fn wait(
        &mut self,
        host: &str,
        slot: Waiter,
        out: &mut VecDeque<Output>,
        next_query: &mut u64,
    ) {
        if let Some(Entry::Resolving { waiting, .. }) = self.hosts.get_mut(host) {
            if !waiting.contains(&slot) {
                waiting.push(slot);
            }
            return;
        }
        *next_query += 1;
        let id = QueryId(*next_query);
        self.hosts.insert(
            host.to_owned(),
            Entry::Resolving {
                id,
                waiting: vec![slot],
            },
        );
        self.queries.insert(id, host.to_owned());
        out.push_back(Output::Resolve(ResolveQuery {
            id,
            host: host.to_owned(),
            kind: QueryKind::Address,
        }));
    }

    /// Stores an answer; returns who was waiting for it.
    pub fn answer(
        &mut self,
        id: QueryId,
        result: Result<Resolution, String>,
        now: Instant,
    ) -> Vec<(Waiter, Result<Resolution, String>)> {
        let Some(host) = self.queries.remove(&id) else {
            return Vec::new();
        };
        let waiting = match self.hosts.get(&host) {
            Some(Entry::Resolving { id: qid, waiting }) if *qid == id => waiting.clone(),
            _ => return Vec::new(),
        };
        let until = match &result {
            Ok(r) if !r.addrs.is_empty() => now + CACHE_FOR,
            // Failures are cached briefly: registrations retry with their own backoff.
            _ => now + Duration::from_secs(5),
        };
        self.hosts.insert(
            host,
            Entry::Done {
                result: result.clone(),
                until,
            },
        );
        waiting.into_iter().map(|s| (s, result.clone())).collect()
    }
}
