//! Backend invariants: PATCH bodies carry exactly the three contract keys, no PATCH
//! repeats a status the backend already acknowledged with nothing in between, requests
//! in flight stay within the core's limit, one report per provider is in flight at a
//! time, and the backend never stores a report issued before one it already stored for
//! that provider (the outbox always sends its newest status, so issue order is age
//! order); and tracking of which provider list the core accepted (a reply after the
//! core's deadline is dropped by the core, so it does not count).

use super::{Findings, Invariant};
use serde_json::Value;
use sip_core::backend::http::http_call;
use sip_core::{BackendOp, BackendReply, BackendRequest, ProviderSpec, RequestId};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Pending {
    issued_at: Instant,
    provider: Option<String>,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct LastPatch {
    body: Vec<u8>,
    acknowledged: bool,
}

/// Report bodies whose outcome the core never learned (deadline passed), per provider,
/// since its last acknowledged report.
#[derive(Debug, Clone, Default)]
struct Unknown(BTreeMap<String, Vec<Vec<u8>>>);

/// What the core made of a backend reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Dropped: it came after the core's deadline (or for no request).
    Late,
    /// A provider list the core applied; `unchanged` when equal to the last applied one.
    List {
        /// Equal to the last accepted list.
        unchanged: bool,
    },
    /// Any other reply the core took.
    Other,
}

/// The backend checker.
#[derive(Debug, Clone)]
pub struct BackendChecks {
    deadline: Duration,
    max_in_flight: usize,
    pending: BTreeMap<RequestId, Pending>,
    last_patch: BTreeMap<String, LastPatch>,
    last_list: Option<Vec<ProviderSpec>>,
    unknown: Unknown,
    /// Providers whose report was answered 404 while listed, not acknowledged since.
    forgotten: BTreeSet<String>,
    /// Reports on their way to the backend: provider and issue number. Kept past the
    /// core's deadline (a late request can still be stored), dropped on arrival or loss.
    travelling: BTreeMap<RequestId, (String, u64)>,
    issued: u64,
    /// Per provider, the issue number of the newest report the backend stored.
    newest_stored: BTreeMap<String, u64>,
}

impl BackendChecks {
    /// A checker for a core with this backend timeout and report limit.
    pub fn new(backend_timeout: Duration, max_reports_in_flight: usize) -> Self {
        Self {
            // The core arms its deadline one second after the timeout.
            deadline: backend_timeout + Duration::from_secs(1),
            max_in_flight: max_reports_in_flight + 1,
            pending: BTreeMap::new(),
            last_patch: BTreeMap::new(),
            last_list: None,
            unknown: Unknown::default(),
            forgotten: BTreeSet::new(),
            travelling: BTreeMap::new(),
            issued: 0,
            newest_stored: BTreeMap::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        let deadline = self.deadline;
        let unknown = &mut self.unknown;
        self.pending.retain(|_, p| {
            let live = now < p.issued_at + deadline;
            if !live {
                if let Some(provider) = &p.provider {
                    unknown
                        .0
                        .entry(provider.clone())
                        .or_default()
                        .push(p.body.clone());
                }
            }
            live
        });
    }

    /// Whether a report of `provider` was answered 404 while it was listed, with no
    /// acknowledged report since.
    pub fn forgotten_while_listed(&self, provider: &str) -> bool {
        self.forgotten.contains(provider)
    }

    /// Whether `body` was reported for `provider` in a request whose outcome the core
    /// never learned, after its last acknowledged report.
    pub fn outcome_was_unknown(&self, provider: &str, body: &[u8]) -> bool {
        self.unknown
            .0
            .get(provider)
            .is_some_and(|bodies| bodies.iter().any(|b| b == body))
    }

    /// Requests the core still waits for.
    pub fn in_flight(&mut self, now: Instant) -> usize {
        self.prune(now);
        self.pending.len()
    }

    /// The last provider list the core accepted.
    pub fn last_list(&self) -> Option<&[ProviderSpec]> {
        self.last_list.as_deref()
    }

    /// The core issued a request.
    pub fn on_request(&mut self, f: &mut Findings, now: Instant, req: &BackendRequest) {
        self.prune(now);
        let (provider, body) = match &req.op {
            BackendOp::FetchProviders
            | BackendOp::FetchConfig
            | BackendOp::LookupDestination { .. } => (None, Vec::new()),
            BackendOp::ReportStatus { provider_id, .. } => {
                let body = http_call(&req.op).body.unwrap_or_default();
                let keys = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()));
                let good = keys.as_ref().is_some_and(|k| {
                    k.len() == 3
                        && ["registerStatus", "registerError", "lastRegisterAt"]
                            .iter()
                            .all(|w| k.iter().any(|x| x == w))
                });
                if !good {
                    f.push(
                        Invariant::PatchBody,
                        format!("{provider_id}: PATCH body keys {keys:?}"),
                    );
                }
                let earlier = self
                    .pending
                    .values()
                    .filter(|p| p.provider.as_deref() == Some(provider_id.as_str()))
                    .count();
                if earlier > 0 {
                    f.push_for(
                        Invariant::ConcurrentReports,
                        provider_id,
                        format!(
                            "{provider_id}: PATCH issued while {earlier} earlier one(s) await an answer"
                        ),
                    );
                }
                self.issued += 1;
                self.travelling
                    .insert(req.id, (provider_id.clone(), self.issued));
                if let Some(last) = self.last_patch.get(provider_id) {
                    if last.acknowledged && last.body == body {
                        f.push(
                            Invariant::DuplicatePatch,
                            format!(
                                "{provider_id}: PATCH repeats the acknowledged status {}",
                                String::from_utf8_lossy(&body)
                            ),
                        );
                    }
                }
                self.last_patch.insert(
                    provider_id.clone(),
                    LastPatch {
                        body: body.clone(),
                        acknowledged: false,
                    },
                );
                (Some(provider_id.clone()), body)
            }
        };
        self.pending.insert(
            req.id,
            Pending {
                issued_at: now,
                provider,
                body,
            },
        );
        if self.pending.len() > self.max_in_flight {
            f.push(
                Invariant::BackendRequestsBound,
                format!(
                    "{} backend requests in flight, limit {}",
                    self.pending.len(),
                    self.max_in_flight
                ),
            );
        }
    }

    /// A request reached the backend; `stored`: it was a report the backend stored.
    pub fn on_arrival(&mut self, f: &mut Findings, id: RequestId, stored: bool) {
        let Some((provider, issued)) = self.travelling.remove(&id) else {
            return;
        };
        if !stored {
            return;
        }
        let newest = self.newest_stored.entry(provider.clone()).or_insert(0);
        if issued < *newest {
            f.push_for(
                Invariant::OlderStatusStored,
                &provider,
                format!(
                    "{provider}: the backend stored report #{issued} after the newer #{}",
                    *newest
                ),
            );
        } else {
            *newest = issued;
        }
    }

    /// A request was lost or blocked on its way: it will never arrive.
    pub fn never_arrives(&mut self, id: RequestId) {
        self.travelling.remove(&id);
    }

    /// A reply reaches the core now; returns what the core makes of it.
    pub fn on_reply(&mut self, now: Instant, id: RequestId, reply: &BackendReply) -> Accepted {
        let Some(p) = self.pending.remove(&id) else {
            return Accepted::Late;
        };
        if now > p.issued_at + self.deadline {
            if let Some(provider) = &p.provider {
                self.unknown
                    .0
                    .entry(provider.clone())
                    .or_default()
                    .push(p.body);
            }
            return Accepted::Late;
        }
        match reply {
            BackendReply::Delivered => {
                if let Some(provider) = &p.provider {
                    if let Some(last) = self.last_patch.get_mut(provider) {
                        if last.body == p.body {
                            last.acknowledged = true;
                        }
                    }
                    self.unknown.0.remove(provider);
                    self.forgotten.remove(provider);
                }
                Accepted::Other
            }
            BackendReply::NotFound => {
                // The core forgets what it delivered for this provider.
                if let Some(provider) = &p.provider {
                    self.last_patch.remove(provider);
                    let listed = self
                        .last_list
                        .as_ref()
                        .is_some_and(|l| l.iter().any(|s| &s.id == provider));
                    if listed {
                        self.forgotten.insert(provider.clone());
                    }
                }
                Accepted::Other
            }
            BackendReply::Providers(list) if p.provider.is_none() => {
                let unchanged = self.last_list.as_ref() == Some(list);
                if let Some(old) = &self.last_list {
                    // A removed provider's history ends: if it comes back it starts anew.
                    let listed: BTreeSet<&str> = list.iter().map(|s| s.id.as_str()).collect();
                    for spec in old {
                        if !listed.contains(spec.id.as_str()) {
                            self.last_patch.remove(&spec.id);
                        }
                    }
                }
                self.last_list = Some(list.clone());
                Accepted::List { unchanged }
            }
            _ => Accepted::Other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sip_core::{RegisterStatus, StatusReport};

    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn report(id: u64, status: RegisterStatus) -> BackendRequest {
        BackendRequest {
            id: RequestId(id),
            op: BackendOp::ReportStatus {
                provider_id: "p1".into(),
                report: StatusReport {
                    register_status: status,
                    register_error: None,
                    last_register_at: None,
                },
            },
        }
    }

    fn names(f: &Findings) -> Vec<Invariant> {
        f.list().iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn second_report_while_first_awaited_is_concurrent() {
        let t = start();
        let mut c = BackendChecks::new(Duration::from_secs(5), 32);
        let mut f = Findings::default();
        c.on_request(&mut f, t, &report(1, RegisterStatus::Pending));
        c.on_request(
            &mut f,
            t + Duration::from_secs(1),
            &report(2, RegisterStatus::Registered),
        );
        assert_eq!(names(&f), [Invariant::ConcurrentReports]);
        // Past the core's deadline (timeout + 1 s) the first no longer counts.
        let mut f = Findings::default();
        c.on_request(
            &mut f,
            t + Duration::from_secs(8),
            &report(3, RegisterStatus::Failed),
        );
        assert!(f.is_empty(), "{:?}", f.list());
    }

    #[test]
    fn older_report_stored_after_newer_is_flagged() {
        let t = start();
        let mut c = BackendChecks::new(Duration::from_secs(5), 32);
        let mut f = Findings::default();
        c.on_request(&mut f, t, &report(1, RegisterStatus::Pending));
        // The first timed out at the core; the second overtakes it on the way.
        c.on_request(
            &mut f,
            t + Duration::from_secs(7),
            &report(2, RegisterStatus::Registered),
        );
        c.on_arrival(&mut f, RequestId(2), true);
        assert!(f.is_empty(), "{:?}", f.list());
        c.on_arrival(&mut f, RequestId(1), true);
        assert_eq!(names(&f), [Invariant::OlderStatusStored]);
        // A request that never arrives, or arrives and is not stored, changes nothing.
        let mut f = Findings::default();
        c.on_request(
            &mut f,
            t + Duration::from_secs(20),
            &report(3, RegisterStatus::Failed),
        );
        c.never_arrives(RequestId(3));
        c.on_arrival(&mut f, RequestId(3), true);
        assert!(f.is_empty(), "{:?}", f.list());
    }
}
