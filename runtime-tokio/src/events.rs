//! Turns the core's events into log lines.
//!
//! Every line about a provider carries `provider_id` and `provider_name`, so that
//! `grep <id>` or `grep <name>` finds a provider's whole story. Events that only carry
//! the id get the name from the last status line of that provider.

mod drops;

use crate::dense::Densify;
use sip_core::{Event, RegisterStatus};
use std::collections::BTreeMap;
use std::time::Instant;

/// At most this many lines name providers whose final status was lost.
const LOST_REPORT_LINES: usize = 100;

/// Logs core events; tells the driver when the core has finished shutting down.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Id → name of every provider: boxed strings, 16 bytes less each than a `String`
    /// (3 MB at 100,000 providers), in full tree nodes (another 2.5 MB).
    names: BTreeMap<Box<str>, Box<str>>,
    names_dense: Densify,
    drops: drops::DropLog,
}

impl EventLog {
    fn name(&self, id: &str) -> &str {
        self.names.get(id).map_or("", |n| n)
    }

    /// Logs one event; returns true on [`Event::ShutdownComplete`].
    pub fn record(&mut self, event: &Event) -> bool {
        self.record_at(event, Instant::now())
    }

    /// [`Self::record`] at `now`, the instant that paces the dropped-datagram lines.
    fn record_at(&mut self, event: &Event, now: Instant) -> bool {
        if let Event::MessageDropped { remote, reason } = event {
            self.drops.dropped(now, *remote, reason);
            return false;
        }
        // Any other event may close a summary interval: the logger has no timer.
        self.drops.tick(now);
        match event {
            Event::RegistrationChanged(v) => {
                if self.names.get(v.id.as_str()).map(|n| &**n) != Some(v.name.as_str()) {
                    self.names
                        .insert(v.id.as_str().into(), v.name.as_str().into());
                    self.names_dense.after_growth(&mut self.names);
                }
                let error = v.error.as_deref().unwrap_or("");
                match v.status {
                    // The warning is `RegistrationFailing`: once per new error, then
                    // bounded, with a count; every retry is here at debug.
                    RegisterStatus::Failed => tracing::debug!(
                        provider_id = %v.id, provider_name = %v.name, status = v.status.as_str(),
                        error, registrar = %v.registrar,
                        next_refresh_at = v.next_refresh_at.as_deref().unwrap_or(""),
                        "registration failed"
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
                sent,
            } => {
                let request = if sent.expires == 0 {
                    "un-REGISTER"
                } else {
                    "REGISTER"
                };
                let credentials = if sent.credentials {
                    "with credentials"
                } else {
                    "without credentials"
                };
                tracing::debug!(
                    provider_id = %provider_id, provider_name = self.name(provider_id),
                    outcome = outcome.as_str(), cseq = sent.cseq, expires = sent.expires,
                    credentials = sent.credentials,
                    "{request} (CSeq {}, {credentials}) ended: {}", sent.cseq, outcome.as_str()
                );
            }
            Event::RegistrationFailing(n) => {
                let retry_in = n.retry_in.map(|d| format!("{d:?}")).unwrap_or_default();
                if n.attempts <= 1 {
                    tracing::warn!(
                        provider_id = %n.provider_id, provider_name = %n.provider_name,
                        error = %n.error, registrar = %n.registrar, retry_in,
                        "registration failed"
                    );
                } else {
                    tracing::warn!(
                        provider_id = %n.provider_id, provider_name = %n.provider_name,
                        error = %n.error, registrar = %n.registrar, retry_in,
                        attempts = n.attempts, since = %n.since,
                        "registration still failing, {} attempts since {}", n.attempts, n.since
                    );
                }
            }
            Event::CallEnded(c) => {
                let ms = |d: Option<std::time::Duration>| d.map_or(0, |d| d.as_millis());
                tracing::info!(
                    call = c.id,
                    provider_id = c.provider_id.as_deref().unwrap_or(""),
                    provider_name = c.provider_name.as_deref().unwrap_or(""),
                    did = %c.did, caller = c.caller.as_deref().unwrap_or(""),
                    destination = c.destination.as_deref().unwrap_or(""),
                    call_id = %c.inbound_call_id,
                    outbound_call_id = c.outbound_call_id.as_deref().unwrap_or(""),
                    status = c.status, outcome = c.outcome, reason = %c.reason,
                    setup_ms = ms(c.setup_time) as u64, duration_ms = ms(c.duration) as u64,
                    "call ended: {} ({} {})", c.outcome, c.status, c.reason
                );
            }
            Event::CallRefused {
                call_id,
                status,
                reason,
            } => tracing::info!(call_id = %call_id, status, "call refused: {status} {reason}"),
            Event::BindingLeftBehind(b) => tracing::warn!(
                provider_id = %b.provider_id, provider_name = %b.provider_name,
                registrar = %b.registrar, aor = %b.aor,
                expires_at = b.expires_at.as_deref().unwrap_or("unknown"), reason = %b.reason,
                "binding left behind at the registrar: it was not removed and lapses when it expires"
            ),
            Event::FinalReportsLost { providers } => {
                // One line per provider up to a bound, so `grep <id>` finds it; a
                // shutdown during a backend outage with 100k providers is one summary.
                for (id, status) in providers.iter().take(LOST_REPORT_LINES) {
                    tracing::warn!(
                        provider_id = %id, provider_name = self.name(id),
                        status = status.as_str(),
                        "final status not delivered to the backend before the shutdown ended"
                    );
                }
                if providers.len() > LOST_REPORT_LINES {
                    tracing::warn!(
                        count = providers.len(),
                        "final statuses of {} providers not delivered to the backend ({} listed above)",
                        providers.len(), LOST_REPORT_LINES
                    );
                }
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
                provider_id = %provider_id, provider_name = self.name(provider_id),
                error = %error, retry_in = ?retry_in,
                "status report not delivered; will retry"
            ),
            Event::ApiKeyRejected { status } => tracing::error!(
                status,
                "API key rejected by the backend: check API_KEY (backend.api_key)"
            ),
            // Counted above, at a bounded rate (drops.rs).
            Event::MessageDropped { .. } => {}
            Event::BindingIdentity(b) => {
                tracing::debug!(
                    provider_id = %b.provider_id, provider_name = self.name(&b.provider_id),
                    next_cseq = b.next_cseq, "binding identity persisted"
                );
            }
            Event::BindingForgotten { provider_id } => {
                tracing::info!(
                    provider_id = %provider_id, provider_name = self.name(provider_id),
                    "provider removed from the list: un-registered and forgotten"
                );
                self.names.remove(provider_id.as_str());
            }
            Event::DestinationFound { did, result, .. } => match result {
                Ok(route) => tracing::info!(
                    did = %did, destination = %route.uri, source = route.source.as_str(),
                    cached = route.cached, "destination looked up"
                ),
                Err(e) => tracing::warn!(did = %did, error = %e, "no destination"),
            },
            Event::PublicAddressLearned {
                provider_id,
                advertised,
                seen,
            } => tracing::info!(
                provider_id = %provider_id, advertised = %advertised, seen = %seen,
                "the registrar sees us at another address (NAT): Contact and Via use it from now on"
            ),
            Event::TargetChanged {
                provider_id,
                from,
                to,
                reason,
            } => tracing::warn!(
                provider_id = %provider_id, provider_name = %self.name(provider_id),
                from = %from, to = %to, reason = %reason,
                "registering at the registrar's next address (RFC 3263 failover)"
            ),
            Event::AbandonedBindingCleared {
                provider_id,
                target,
                removed,
                why,
            } => {
                if *removed {
                    tracing::info!(
                        provider_id = %provider_id, provider_name = %self.name(provider_id),
                        target = %target, "removed our binding at the registrar address we left"
                    );
                } else {
                    tracing::warn!(
                        provider_id = %provider_id, provider_name = %self.name(provider_id),
                        target = %target, why = %why,
                        "could not remove our binding at the registrar address we left (it lapses there by itself)"
                    );
                }
            }
            Event::KeepaliveUnanswered { registrar } => tracing::warn!(
                registrar = %registrar,
                "the registrar does not answer our OPTIONS keep-alive: it or the path to it may be down (registrations there are refreshed as usual)"
            ),
            Event::KeepaliveAnswered { registrar } => tracing::info!(
                registrar = %registrar,
                "the registrar answers our OPTIONS keep-alive again"
            ),
            Event::DestinationFallback { did, reason } => tracing::warn!(
                did = %did, reason = %reason,
                "destination lookup failed: using the default destination"
            ),
            Event::ConfigFetchFailed { error, retry_in } => tracing::warn!(
                error = %error, retry_in = ?retry_in,
                "fetching GET /api/sip/config failed; keeping the default destination domain"
            ),
            Event::DefaultDomainChanged { domain } => tracing::info!(
                domain = %domain, "default destination domain from the backend (livekitDomain)"
            ),
            Event::ShutdownComplete => {
                self.drops.flush(now);
                tracing::info!("shutdown complete");
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::LogLevel;
    use crate::logging::tests::capture;
    use sip_core::{BindingIdentity, RegisterOutcome, RegistrationView, SentRegister};
    use std::time::Duration;

    fn view(id: &str, name: &str) -> Event {
        Event::RegistrationChanged(Box::new(RegistrationView {
            id: id.into(),
            name: name.into(),
            status: RegisterStatus::Pending,
            error: None,
            last_register_at: None,
            expires_at: None,
            next_refresh_at: None,
            registrar: "127.0.0.1:5060".into(),
            transport: sip_core::Transport::Udp,
            target: None,
        }))
    }

    #[test]
    fn every_line_about_a_provider_names_it() {
        let lines = capture(LogLevel::Trace, || {
            let mut log = EventLog::default();
            log.record(&view("p-1", "WaVoIP main"));
            log.record(&Event::RegisterOutcome {
                provider_id: "p-1".into(),
                outcome: RegisterOutcome::Challenged,
                sent: SentRegister {
                    cseq: 1,
                    expires: 3600,
                    credentials: false,
                },
            });
            log.record(&Event::ReportFailed {
                provider_id: "p-1".into(),
                error: "backend answered HTTP 503".into(),
                retry_in: Duration::from_secs(1),
            });
            log.record(&Event::BindingIdentity(BindingIdentity {
                provider_id: "p-1".into(),
                account: "u@h:5060".into(),
                call_id: "c".into(),
                from_tag: "t".into(),
                line: "l".into(),
                next_cseq: 101,
            }));
            log.record(&Event::BindingForgotten {
                provider_id: "p-1".into(),
            });
            // Forgotten: a later line about the id has no stale name.
            log.record(&Event::RegisterOutcome {
                provider_id: "p-1".into(),
                outcome: RegisterOutcome::Success,
                sent: SentRegister {
                    cseq: 2,
                    expires: 3600,
                    credentials: true,
                },
            });
        });
        assert_eq!(lines.len(), 6);
        for l in &lines[..5] {
            assert_eq!(l["provider_id"], "p-1", "{l}");
            assert_eq!(l["provider_name"], "WaVoIP main", "{l}");
        }
        assert_eq!(lines[5]["provider_name"], "");
    }

    #[test]
    fn dropped_messages_are_summarised_by_later_events_and_at_shutdown() {
        let t0 = Instant::now();
        let dropped = Event::MessageDropped {
            remote: "127.0.0.1:5099".parse().unwrap(),
            reason: "not SIP".into(),
        };
        let lines = capture(LogLevel::Debug, || {
            let mut log = EventLog::default();
            for _ in 0..1_000 {
                log.record_at(&dropped, t0);
            }
            // Another event after the interval writes the summary of what was counted.
            log.record_at(&view("p-1", "Main"), t0 + drops::SUMMARY_INTERVAL);
            for _ in 0..3 {
                log.record_at(&dropped, t0 + drops::SUMMARY_INTERVAL);
            }
            log.record_at(&Event::ShutdownComplete, t0 + drops::SUMMARY_INTERVAL);
        });
        let counted: Vec<_> = lines
            .iter()
            .filter(|l| l.get("dropped").is_some())
            .collect();
        let singly = lines
            .iter()
            .filter(|l| l.get("dropped").is_none() && l["reason"] == "not SIP")
            .count();
        assert_eq!(singly, drops::LOGGED_SINGLY as usize, "{lines:#?}");
        assert_eq!(counted.len(), 2, "{lines:#?}");
        assert_eq!(
            counted[0]["dropped"],
            1_000 - u64::from(drops::LOGGED_SINGLY)
        );
        assert_eq!(counted[1]["dropped"], 3, "flushed at shutdown");
        assert_eq!(lines.last().unwrap()["msg"], "shutdown complete");
    }

    fn failing(attempts: u32) -> Event {
        Event::RegistrationFailing(Box::new(sip_core::FailureNotice {
            provider_id: "p-2".into(),
            provider_name: "Twilio".into(),
            registrar: "sip.example:5060".into(),
            error: "no response from sip.example:5060".into(),
            attempts,
            since: "2026-12-01T10:00:00.000Z".into(),
            retry_in: Some(Duration::from_secs(300)),
        }))
    }

    #[test]
    fn failures_are_warned_when_new_and_repeated_with_their_count() {
        let lines = capture(LogLevel::Info, || {
            let mut log = EventLog::default();
            let mut failed = view("p-2", "Twilio");
            if let Event::RegistrationChanged(v) = &mut failed {
                v.status = RegisterStatus::Failed;
                v.error = Some("no response from sip.example:5060".into());
            }
            log.record(&failed);
            log.record(&failing(1));
            log.record(&failed);
            log.record(&failing(12));
        });
        // Every retry's status change is below info; the two notices are warnings.
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| l["level"] == "warn"));
        assert_eq!(lines[0]["msg"], "registration failed");
        assert_eq!(
            lines[1]["msg"],
            "registration still failing, 12 attempts since 2026-12-01T10:00:00.000Z"
        );
        assert_eq!(lines[1]["provider_name"], "Twilio");
    }

    #[test]
    fn lost_final_reports_and_bindings_left_behind_are_warned() {
        let lines = capture(LogLevel::Info, || {
            let mut log = EventLog::default();
            log.record(&view("p-1", "WaVoIP"));
            log.record(&Event::FinalReportsLost {
                providers: vec![("p-1".into(), RegisterStatus::Pending)],
            });
            log.record(&Event::BindingLeftBehind(Box::new(sip_core::LeftBehind {
                provider_id: "p-1".into(),
                provider_name: "WaVoIP".into(),
                registrar: "sip.example:5060".into(),
                aor: "sip:u@sip.example".into(),
                expires_at: Some("2026-12-01T11:00:00.000Z".into()),
                reason: "authentication rejected".into(),
            })));
        });
        let warns: Vec<_> = lines.iter().filter(|l| l["level"] == "warn").collect();
        assert_eq!(warns.len(), 2, "{lines:?}");
        assert_eq!(warns[0]["provider_id"], "p-1");
        assert_eq!(warns[0]["provider_name"], "WaVoIP");
        assert_eq!(warns[0]["status"], "pending");
        assert_eq!(warns[1]["aor"], "sip:u@sip.example");
        assert_eq!(warns[1]["expires_at"], "2026-12-01T11:00:00.000Z");
    }
}
