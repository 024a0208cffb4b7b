//! Turns the core's events into log lines (and, later, metrics).

use sip_core::{Event, RegisterStatus};

/// Logs core events; tells the driver when the core has finished shutting down.
#[derive(Debug, Default)]
pub struct EventLog;

impl EventLog {
    /// Logs one event; returns true on [`Event::ShutdownComplete`].
    pub fn record(&mut self, event: &Event) -> bool {
        match event {
            Event::RegistrationChanged(v) => {
                let error = v.error.as_deref().unwrap_or("");
                match v.status {
                    RegisterStatus::Failed => tracing::warn!(
                        provider_id = %v.id, provider_name = %v.name, status = v.status.as_str(),
                        error, registrar = %v.registrar, "registration failed"
                    ),
                    _ => tracing::info!(
                        provider_id = %v.id, provider_name = %v.name, status = v.status.as_str(),
                        error, registrar = %v.registrar,
                        expires_at = v.expires_at.as_deref().unwrap_or(""),
                        next_refresh_at = v.next_refresh_at.as_deref().unwrap_or(""),
                        "registration {}", v.status.as_str()
                    ),
                }
            }
            Event::RegisterOutcome {
                provider_id,
                outcome,
            } => {
                tracing::debug!(provider_id = %provider_id, outcome = outcome.as_str(), "REGISTER transaction ended");
            }
            Event::ProvidersApplied {
                total,
                added,
                removed,
                changed,
                invalid,
            } => tracing::info!(
                total,
                added,
                removed,
                changed,
                invalid,
                "provider list applied"
            ),
            Event::ProvidersFetchFailed { error, retry_in } => tracing::warn!(
                error = %error, retry_in = ?retry_in, "fetching the provider list failed; keeping the running set"
            ),
            Event::ReportFailed {
                provider_id,
                error,
                retry_in,
            } => tracing::warn!(
                provider_id = %provider_id, error = %error, retry_in = ?retry_in,
                "status report not delivered; will retry"
            ),
            Event::ApiKeyRejected { status } => tracing::error!(
                status,
                "API key rejected by the backend: check API_KEY (backend.api_key)"
            ),
            Event::MessageDropped { remote, reason } => {
                tracing::debug!(remote = %remote, reason = %reason, "dropped an unusable SIP message");
            }
            Event::BindingIdentity(b) => {
                tracing::debug!(provider_id = %b.provider_id, next_cseq = b.next_cseq, "binding identity persisted");
            }
            Event::BindingForgotten { provider_id } => {
                tracing::debug!(provider_id = %provider_id, "provider removed");
            }
            Event::ShutdownComplete => {
                tracing::info!("shutdown complete");
                return true;
            }
        }
        false
    }
}
