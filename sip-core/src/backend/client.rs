//! Backend requests in flight and the status outbox's use of them: ids, deadlines, the
//! limit on reports in flight, and what a report's reply does to its outbox entry.
//!
//! The meaning of each request (a provider fetch, a config fetch, a destination lookup)
//! belongs to its owner; this module only carries requests out and hands each reply
//! back with what it was for.

use super::outbox::{Outbox, OutboxStep};
use super::API_KEY_RETRY;
use crate::io::{BackendOp, BackendReply, BackendRequest, Event, Output, RequestId, StatusReport};
use crate::rng::IdGen;
use crate::time::{TimerKey, TimerTable};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// What a backend request in flight is for.
#[derive(Debug, Clone)]
pub enum PendingRequest {
    /// `GET /api/sip/providers`.
    Fetch,
    /// A status report of outbox entry `outbox_idx`.
    Report {
        /// The outbox entry.
        outbox_idx: u32,
        /// When it was sent: delivered reports measure the backend's latency.
        sent_at: Instant,
    },
    /// `GET /api/sip/config`.
    Config,
    /// A destination lookup for `did`.
    Destination {
        /// The dialed number.
        did: String,
    },
}

impl PendingRequest {
    /// The metric label of the operation.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Fetch => "fetch_providers",
            Self::Report { .. } => "report_status",
            Self::Config => "fetch_config",
            Self::Destination { .. } => "lookup_destination",
        }
    }
}

/// What a report's reply asks of the rest of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterReport {
    /// Nothing.
    Done,
    /// The backend does not know the provider (404): fetch the list again.
    Resync,
}

/// The backend requests in flight and the status outbox.
#[derive(Debug)]
pub struct BackendClient {
    outbox: Outbox,
    pending: BTreeMap<RequestId, PendingRequest>,
    next_request: u64,
    /// The core's deadline for an answer (the driver's own timeout is a safety net).
    deadline: Duration,
    /// Status reports in flight, and outbox entries waiting for a free slot: a burst of
    /// ten thousand status changes must not become ten thousand concurrent requests.
    reports_in_flight: usize,
    max_reports_in_flight: usize,
    report_wait: VecDeque<u32>,
    /// The last report failed: the next success means the backend is back.
    failing: bool,
    /// How long delivered reports took lately (a decaying maximum): what the final
    /// reports of a shutdown need, so the rest of the grace can go to un-REGISTERs.
    report_latency: Duration,
}

impl BackendClient {
    /// A client whose requests get `timeout` (plus a second for the driver's own
    /// timeout to fire first), at most `max_reports_in_flight` reports at a time, and
    /// failed reports retried from `retry_initial` up to `retry_cap`.
    pub fn new(
        timeout: Duration,
        max_reports_in_flight: usize,
        retry_initial: Duration,
        retry_cap: Duration,
    ) -> Self {
        Self {
            outbox: Outbox::new(retry_initial, retry_cap),
            pending: BTreeMap::new(),
            next_request: 0,
            deadline: timeout + Duration::from_secs(1),
            reports_in_flight: 0,
            max_reports_in_flight,
            report_wait: VecDeque::new(),
            failing: false,
            report_latency: Duration::ZERO,
        }
    }

    /// Starts a request; its reply (or its deadline) comes back with the id.
    pub fn request(
        &mut self,
        now: Instant,
        op: BackendOp,
        pending: PendingRequest,
        timers: &mut TimerTable,
        out: &mut VecDeque<Output>,
    ) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.pending.insert(id, pending);
        timers.set(TimerKey::BackendDeadline(id.0), now + self.deadline);
        out.push_back(Output::Backend(BackendRequest { id, op }));
        id
    }

    /// What request `id` was for, if it is still in flight; it no longer is.
    pub fn take(&mut self, id: RequestId, timers: &mut TimerTable) -> Option<PendingRequest> {
        let pending = self.pending.remove(&id)?;
        timers.cancel(TimerKey::BackendDeadline(id.0));
        Some(pending)
    }

    /// What request `id` is for, while it is in flight.
    pub fn pending(&self, id: RequestId) -> Option<&PendingRequest> {
        self.pending.get(&id)
    }

    /// Whether no request is in flight and every status is delivered or given up.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.outbox.is_settled()
    }

    /// How long delivered reports took lately.
    pub fn report_latency(&self) -> Duration {
        self.report_latency
    }

    /// The providers whose latest status the backend does not hold.
    pub fn undelivered_reports(&self) -> Vec<(String, crate::io::RegisterStatus)> {
        self.outbox.undelivered_reports()
    }

    /// Queues a provider's status for the backend (the latest wins).
    pub fn push_report(
        &mut self,
        now: Instant,
        provider_id: &str,
        report: StatusReport,
        timers: &mut TimerTable,
        out: &mut VecDeque<Output>,
    ) {
        let (idx, step) = self.outbox.push(provider_id, report);
        self.outbox_step(now, idx, step, timers, out);
    }

    /// A provider left the list: its pending statuses are of no more use.
    pub fn forget(&mut self, provider_id: &str) {
        self.outbox.forget_id(provider_id);
    }

    /// Outbox entry `idx`'s retry is due.
    pub fn retry_due(
        &mut self,
        now: Instant,
        idx: u32,
        timers: &mut TimerTable,
        out: &mut VecDeque<Output>,
    ) {
        let step = self.outbox.retry_due(idx);
        self.outbox_step(now, idx, step, timers, out);
    }

    fn outbox_step(
        &mut self,
        now: Instant,
        idx: u32,
        step: OutboxStep,
        timers: &mut TimerTable,
        out: &mut VecDeque<Output>,
    ) {
        match step {
            OutboxStep::Send(_) if self.reports_in_flight >= self.max_reports_in_flight => {
                self.outbox.defer(idx);
                self.report_wait.push_back(idx);
            }
            OutboxStep::Send(report) => {
                let Some(provider_id) = self.outbox.provider_id(idx).map(str::to_owned) else {
                    return;
                };
                let op = BackendOp::ReportStatus {
                    provider_id,
                    report,
                };
                let pending = PendingRequest::Report {
                    outbox_idx: idx,
                    sent_at: now,
                };
                self.request(now, op, pending, timers, out);
                self.reports_in_flight += 1;
            }
            OutboxStep::RetryAt(at) => timers.set(TimerKey::OutboxRetry(idx), at),
            OutboxStep::Idle => {}
        }
    }

    /// The reply to a status report sent at `sent_at` for outbox entry `idx`. Call
    /// [`BackendClient::report_done`] after doing what it returns.
    #[allow(clippy::too_many_arguments)]
    pub fn on_report_reply(
        &mut self,
        now: Instant,
        idx: u32,
        sent_at: Instant,
        reply: BackendReply,
        ids: &mut IdGen,
        timers: &mut TimerTable,
        out: &mut VecDeque<Output>,
    ) -> AfterReport {
        let mut after = AfterReport::Done;
        let delivered = matches!(reply, BackendReply::Delivered);
        match reply {
            // A status report has one success; any other success-shaped reply counts
            // as delivered (the backend accepted the request).
            BackendReply::Delivered
            | BackendReply::Providers(_)
            | BackendReply::Config { .. }
            | BackendReply::Destination { .. } => {
                if delivered {
                    let took = now.saturating_duration_since(sent_at);
                    self.report_latency = took.max(self.report_latency * 3 / 4);
                }
                let step = self.outbox.delivered(idx);
                self.outbox_step(now, idx, step, timers, out);
                if std::mem::take(&mut self.failing) {
                    // The backend is back: deliver what waited out the outage now
                    // (paced by the in-flight limit) instead of at each backoff's end.
                    for waiting in self.outbox.take_waiting_retries() {
                        timers.cancel(TimerKey::OutboxRetry(waiting));
                        self.retry_due(now, waiting, timers, out);
                    }
                }
            }
            BackendReply::NotFound => {
                // The provider seems gone: resync. If the list drops it, its entry is
                // forgotten there; if it is still listed, the report is retried (a
                // 404 for a listed provider must not lose its status — found by the
                // simulator).
                if let Some(d) = self.outbox.failed(idx, now, ids.unit()) {
                    timers.set(TimerKey::OutboxRetry(idx), now + d);
                }
                after = AfterReport::Resync;
            }
            BackendReply::Unauthorized { status } => {
                out.push_back(Output::Event(Event::ApiKeyRejected { status }));
                let draw = ids.unit();
                if let Some(d) = self.outbox.failed_slowly(idx, now, API_KEY_RETRY, draw) {
                    timers.set(TimerKey::OutboxRetry(idx), now + d);
                }
            }
            BackendReply::Failed(error) => {
                self.failing = true;
                if let Some(d) = self.outbox.failed(idx, now, ids.unit()) {
                    timers.set(TimerKey::OutboxRetry(idx), now + d);
                    let provider_id = self.outbox.provider_id(idx).unwrap_or("").to_owned();
                    out.push_back(Output::Event(Event::ReportFailed {
                        provider_id,
                        error,
                        retry_in: d,
                    }));
                }
            }
        }
        after
    }

    /// A report finished (after [`BackendClient::on_report_reply`] and what it asked
    /// for): let a waiting entry use the slot.
    pub fn report_done(
        &mut self,
        now: Instant,
        timers: &mut TimerTable,
        out: &mut VecDeque<Output>,
    ) {
        self.reports_in_flight = self.reports_in_flight.saturating_sub(1);
        while let Some(idx) = self.report_wait.pop_front() {
            let step = self.outbox.resume(idx);
            if step != OutboxStep::Idle {
                self.outbox_step(now, idx, step, timers, out);
                break;
            }
        }
    }
}
