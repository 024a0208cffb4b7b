//! What crossed the core's boundary in one run, as data rather than trace text, so a
//! scenario can assert a rule directly: which REGISTERs a provider's account sent, when
//! each backend request went out and how it was answered, what the backend stored, which
//! bindings were left. Kept only when the run keeps its trace in full (a day of ten
//! thousand providers would otherwise hold every request).

use crate::check::wire;
use crate::models::backend::StoredStatus;
use crate::models::registrar::Binding;
use sip_core::{BackendOp, BackendReply, BackendRequest, Event, RequestId, StatusReport};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One REGISTER transaction trunkline started (its retransmissions are not repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterSent {
    /// When it left.
    pub at: Duration,
    /// The registrar it went to.
    pub registrar: usize,
    /// The provider whose account it is at that registrar (`None`: nobody's).
    pub provider: Option<String>,
    /// Its Call-ID: one per registration, a new one after a provider change.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// The expiry it asks for (`0`: an un-REGISTER).
    pub expires: u32,
    /// Whether it carries credentials.
    pub authorized: bool,
}

impl RegisterSent {
    /// Whether it removes a binding (`Expires: 0`).
    pub fn is_unregister(&self) -> bool {
        self.expires == 0
    }
}

/// A backend answer as it reached trunkline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The provider list, by id.
    Providers(Vec<String>),
    /// The report was stored.
    Delivered,
    /// `404`.
    NotFound,
    /// `401`/`403`.
    Unauthorized(u16),
    /// No usable answer (connection refused, 5xx).
    Failed(String),
    /// The backend's SIP settings (`livekitDomain`).
    Config(Option<String>),
    /// A DID's destination.
    Destination(String),
}

impl From<&BackendReply> for Reply {
    fn from(r: &BackendReply) -> Self {
        match r {
            BackendReply::Providers(list) => {
                Self::Providers(list.iter().map(|s| s.id.clone()).collect())
            }
            BackendReply::Delivered => Self::Delivered,
            BackendReply::NotFound => Self::NotFound,
            BackendReply::Unauthorized { status } => Self::Unauthorized(*status),
            BackendReply::Failed(e) => Self::Failed(e.clone()),
            BackendReply::Config { livekit_domain } => Self::Config(livekit_domain.clone()),
            BackendReply::Destination { uri } => Self::Destination(uri.clone()),
        }
    }
}

/// The answer to one backend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// When it reached trunkline.
    pub at: Duration,
    /// What it said.
    pub reply: Reply,
    /// It came after the core's deadline: the core had already counted the request as
    /// failed and dropped it.
    pub late: bool,
}

/// One backend request trunkline made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCall {
    /// The core's id of it.
    pub id: RequestId,
    /// When it left.
    pub sent_at: Duration,
    /// It fetched the provider list.
    pub list_fetch: bool,
    /// The provider a report is about.
    pub provider: Option<String>,
    /// The status a report carries.
    pub report: Option<StatusReport>,
    /// Its answer, if one reached trunkline.
    pub answer: Option<Answer>,
}

impl BackendCall {
    /// Whether it fetched the provider list.
    pub fn is_fetch(&self) -> bool {
        self.list_fetch
    }

    /// Whether its answer reached the core in time and said `reply`.
    pub fn answered(&self, reply: &Reply) -> bool {
        self.answer
            .as_ref()
            .is_some_and(|a| !a.late && a.reply == *reply)
    }
}

/// A report the backend stored, in the order it stored them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// When it was stored.
    pub at: Duration,
    /// The request that carried it.
    pub request: RequestId,
    /// The provider.
    pub provider: String,
    /// What was stored.
    pub report: StatusReport,
}

/// A binding a registrar held at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalBinding {
    /// The registrar.
    pub registrar: usize,
    /// The provider whose account it is there (`None`: nobody's).
    pub provider: Option<String>,
    /// The Call-ID of the registration that made it.
    pub call_id: String,
}

/// See the module docs. Every list is in the order things happened.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// REGISTER transactions trunkline started.
    pub registers: Vec<RegisterSent>,
    /// Backend requests trunkline made, with their answers.
    pub backend: Vec<BackendCall>,
    /// Every event the core emitted.
    pub events: Vec<(Duration, Event)>,
    /// Reports the backend stored.
    pub stored: Vec<StoredReport>,
    /// What the backend holds for each provider at the end.
    pub statuses: BTreeMap<String, StoredStatus>,
    /// The bindings every registrar holds at the end.
    pub bindings: Vec<FinalBinding>,
    accounts: BTreeMap<(usize, String), String>,
    branches: BTreeSet<String>,
}

impl Journal {
    /// An empty journal; `accounts` maps `(registrar, SIP user)` to provider id.
    pub fn new(accounts: BTreeMap<(usize, String), String>) -> Self {
        Self {
            accounts,
            ..Self::default()
        }
    }

    /// The REGISTER transactions of a provider's account, at any registrar.
    pub fn registers_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a RegisterSent> + 'a {
        self.registers
            .iter()
            .filter(move |r| r.provider.as_deref() == Some(provider))
    }

    /// The status reports of a provider.
    pub fn reports_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a BackendCall> + 'a {
        self.backend
            .iter()
            .filter(move |c| c.provider.as_deref() == Some(provider))
    }

    /// The provider-list fetches.
    pub fn fetches(&self) -> impl Iterator<Item = &BackendCall> {
        self.backend.iter().filter(|c| c.is_fetch())
    }

    /// The reports the backend stored for a provider.
    pub fn stored_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a StoredReport> + 'a {
        self.stored.iter().filter(move |s| s.provider == provider)
    }

    /// The bindings of a provider's account left at the end, at any registrar.
    pub fn bindings_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a FinalBinding> + 'a {
        self.bindings
            .iter()
            .filter(move |b| b.provider.as_deref() == Some(provider))
    }

    /// Every `RegistrationChanged` view of a provider, with its time.
    pub fn statuses_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = (Duration, &'a sip_core::RegistrationView)> + 'a {
        self.events.iter().filter_map(move |(at, e)| match e {
            Event::RegistrationChanged(v) if v.id == provider => Some((*at, v.as_ref())),
            _ => None,
        })
    }

    /// A datagram trunkline sent to `registrar`.
    pub fn transmit(&mut self, at: Duration, registrar: usize, bytes: &[u8]) {
        let Some(m) = wire::scan(bytes) else {
            return;
        };
        if m.method() != Some("REGISTER") {
            return;
        }
        let (Some(branch), Some(call_id), Some((cseq, _)), Some(user)) =
            (m.branch(), m.call_id(), m.cseq(), m.to_user())
        else {
            return;
        };
        if !self.branches.insert(branch.to_owned()) {
            return;
        }
        let authorized =
            m.header("Authorization").is_some() || m.header("Proxy-Authorization").is_some();
        self.registers.push(RegisterSent {
            at,
            registrar,
            provider: self.accounts.get(&(registrar, user.to_owned())).cloned(),
            call_id: call_id.to_owned(),
            cseq,
            expires: m.requested_expires().unwrap_or(3600),
            authorized,
        });
    }

    /// The core made a backend request.
    pub fn request(&mut self, at: Duration, req: &BackendRequest) {
        let (provider, report) = match &req.op {
            BackendOp::FetchProviders
            | BackendOp::FetchConfig
            | BackendOp::LookupDestination { .. } => (None, None),
            BackendOp::ReportStatus {
                provider_id,
                report,
            } => (Some(provider_id.clone()), Some(report.clone())),
        };
        self.backend.push(BackendCall {
            id: req.id,
            sent_at: at,
            list_fetch: matches!(req.op, BackendOp::FetchProviders),
            provider,
            report,
            answer: None,
        });
    }

    /// The backend stored the report of request `id`.
    pub fn stored(&mut self, at: Duration, id: RequestId, provider: &str, report: &StatusReport) {
        self.stored.push(StoredReport {
            at,
            request: id,
            provider: provider.to_owned(),
            report: report.clone(),
        });
    }

    /// The answer to request `id` reached trunkline.
    pub fn answer(&mut self, at: Duration, id: RequestId, reply: &BackendReply, late: bool) {
        // From the newest: an answer usually follows its request closely.
        if let Some(call) = self.backend.iter_mut().rev().find(|c| c.id == id) {
            call.answer = Some(Answer {
                at,
                reply: reply.into(),
                late,
            });
        }
    }

    /// The core emitted an event.
    pub fn event(&mut self, at: Duration, e: &Event) {
        self.events.push((at, e.clone()));
    }

    /// The end of the run: what the backend holds and the bindings left.
    pub fn finish<'a>(
        &mut self,
        statuses: BTreeMap<String, StoredStatus>,
        bindings: impl Iterator<Item = (usize, &'a Binding)>,
    ) {
        self.statuses = statuses;
        self.bindings = bindings
            .map(|(registrar, b)| FinalBinding {
                registrar,
                provider: self.accounts.get(&(registrar, b.aor.clone())).cloned(),
                call_id: b.call_id.clone(),
            })
            .collect();
    }
}
