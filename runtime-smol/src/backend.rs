//! Where providers come from and statuses go.

use sip_core::{BackendOp, BackendReply, ProviderSpec, StatusReport};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// Carries out the core's backend operations.
///
/// The driver clones the backend into a task per request and answers the core with the
/// reply when the future completes; the core owns the deadline, so a future that never
/// completes only costs a task.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Performs one operation; every failure is a [`BackendReply`], never a panic.
    fn perform(&self, op: BackendOp) -> impl Future<Output = BackendReply> + Send;
}

/// A backend in memory: a fixed provider list, and the latest status reported per
/// provider. For examples, tests and running without a backend service.
#[derive(Debug, Clone, Default)]
pub struct StaticBackend {
    providers: Arc<Vec<ProviderSpec>>,
    statuses: Arc<Mutex<BTreeMap<String, StatusReport>>>,
}

impl StaticBackend {
    /// A backend that serves `providers`.
    pub fn new(providers: Vec<ProviderSpec>) -> Self {
        Self {
            providers: Arc::new(providers),
            statuses: Arc::default(),
        }
    }

    /// The latest status reported for each provider, by id.
    pub fn statuses(&self) -> BTreeMap<String, StatusReport> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, StatusReport>> {
        // A panic while holding the lock cannot leave the map half-written (inserts
        // are single calls), so a poisoned lock is still usable.
        self.statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backend for StaticBackend {
    fn perform(&self, op: BackendOp) -> impl Future<Output = BackendReply> + Send {
        let reply = match op {
            BackendOp::FetchProviders => BackendReply::Providers(self.providers.to_vec()),
            BackendOp::ReportStatus {
                provider_id,
                report,
            } => {
                self.lock().insert(provider_id, report);
                BackendReply::Delivered
            }
            // File mode's routing is in the core's config: the core does not ask.
            BackendOp::FetchConfig | BackendOp::LookupDestination { .. } => BackendReply::NotFound,
        };
        std::future::ready(reply)
    }
}
