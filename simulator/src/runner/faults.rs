//! Applying the fault schedule, the workload changes and the heal at the end of the
//! fault phase.

use super::Sim;
use crate::models::backend::BackendMode;
use crate::models::registrar::Mode;
use crate::net::{Cut, Link, LinkConfig};
use crate::scenario::{registrar_name, Fault, ProviderChange, SimCommand, StreamMode, Target};
use crate::trace::TraceEvent;
use sip_core::Command;

fn target_name(t: Target) -> String {
    match t {
        Target::Registrar(i) => registrar_name(i),
        Target::Backend => "backend".to_owned(),
        Target::LiveKit(i) => crate::scenario::livekit_name(i),
        Target::All => "all links".to_owned(),
    }
}

fn link_text(c: &LinkConfig) -> String {
    format!(
        "latency {:?}+exp({:?}) loss {:.0}% dup {:.0}%",
        c.latency_min,
        c.latency_jitter,
        c.loss * 100.0,
        c.duplicate * 100.0
    )
}

/// A one-line description of a fault for the trace.
pub fn describe(fault: &Fault, provider_id: impl Fn(usize) -> String) -> String {
    match fault {
        Fault::Partition { target, cut } => {
            let way = match cut {
                Cut::Both => "both ways",
                Cut::ToPeer => "requests only",
                Cut::FromPeer => "answers only",
            };
            format!("partition {} ({way})", target_name(*target))
        }
        Fault::Repair { target } => format!("repair {}", target_name(*target)),
        Fault::Link { target, config } => {
            format!("link {}: {}", target_name(*target), link_text(config))
        }
        Fault::Registrar { registrar, mode } => {
            let m = match mode {
                Mode::Normal => "normal".to_owned(),
                Mode::Silent => "silent".to_owned(),
                Mode::Reject {
                    status,
                    retry_after,
                } => match retry_after {
                    Some(s) => format!("answers {status} with Retry-After {s}"),
                    None => format!("answers {status}"),
                },
                Mode::Slow { delay } => format!("answers after {delay:?}"),
            };
            format!("{} {m}", registrar_name(*registrar))
        }
        Fault::RestartRegistrar { registrar } => {
            format!(
                "{} restarts (bindings forgotten)",
                registrar_name(*registrar)
            )
        }
        Fault::Backend(mode) => {
            let m = match mode {
                BackendMode::Up => "up".to_owned(),
                BackendMode::Down => "down (connection refused)".to_owned(),
                BackendMode::Error { status } => format!("answers {status}"),
                BackendMode::NotFound => "answers 404 to PATCH".to_owned(),
                BackendMode::Unauthorized => "answers 401".to_owned(),
                BackendMode::Slow { delay } => format!("answers after {delay:?}"),
            };
            format!("backend {m}")
        }
        Fault::Provider { provider, change } => {
            let id = provider_id(*provider);
            match change {
                ProviderChange::Remove => format!("provider list: {id} removed"),
                ProviderChange::Add => format!("provider list: {id} listed"),
                ProviderChange::Credentials(true) => format!("provider list: {id} right password"),
                ProviderChange::Credentials(false) => format!("provider list: {id} wrong password"),
                ProviderChange::Expires(e) => format!("provider list: {id} expiresIn {e:?}"),
                ProviderChange::Enabled(e) => format!("provider list: {id} enabled={e}"),
                ProviderChange::Registrar(r) => {
                    format!("provider list: {id} served by {}", registrar_name(*r))
                }
            }
        }
        Fault::Streams { registrar, mode } => {
            let m = match mode {
                StreamMode::Accept => "accepts connections",
                StreamMode::Refuse => "refuses connections",
                StreamMode::CloseAfterAnswer => "closes each connection after answering",
            };
            format!("{} {m}", registrar_name(*registrar))
        }
        Fault::DropConnections { registrar, reset } => format!(
            "{} {} its connections",
            registrar_name(*registrar),
            if *reset { "resets" } else { "closes" }
        ),
        Fault::Command(SimCommand::Resync) => "command: resync".to_owned(),
        Fault::Command(SimCommand::Reregister { provider }) => {
            format!("command: re-register {}", provider_id(*provider))
        }
    }
}

impl Sim {
    fn provider_id(&self, i: usize) -> String {
        match self.providers.len() {
            0 => "-".to_owned(),
            n => self
                .providers
                .get(i % n)
                .map(|(p, _)| p.id.clone())
                .unwrap_or_default(),
        }
    }

    fn links_of(&mut self, target: Target) -> Vec<&mut Link> {
        match target {
            Target::Registrar(i) => {
                let n = self.links.len().max(1);
                self.links.get_mut(i % n).into_iter().collect()
            }
            Target::Backend => vec![&mut self.backend_link],
            Target::LiveKit(i) => self.peers.own_links(Some(i)),
            Target::All => self
                .links
                .iter_mut()
                .chain(std::iter::once(&mut self.backend_link))
                .chain(self.peers.own_links(None))
                .collect(),
        }
    }

    fn refresh_all_health(&mut self) {
        for i in 0..self.registrars.len() {
            self.refresh_health(i);
        }
    }

    /// Serves the current provider definitions from the backend model.
    pub(super) fn publish_providers(&mut self) {
        let specs = self
            .providers
            .iter()
            .filter(|(_, listed)| *listed)
            .map(|(p, _)| p.spec(&self.scenario.registrars))
            .collect();
        self.backend.set_providers(specs);
    }

    pub(super) fn apply_fault(&mut self, index: usize) {
        let Some(s) = self.scenario.faults.get(index).cloned() else {
            return;
        };
        let text = describe(&s.fault, |i| self.provider_id(i));
        self.traced_fault(&text);
        let n_reg = self.registrars.len().max(1);
        if matches!(s.fault, Fault::Provider { .. } | Fault::Command(_)) {
            let now = self.clock.now();
            self.last_workload_change = Some(now);
            self.stream_checks.on_workload(now);
        }
        match s.fault {
            Fault::Partition { target, cut } => {
                for l in self.links_of(target) {
                    l.cut(cut);
                }
                self.refresh_all_health();
            }
            Fault::Repair { target } => {
                for l in self.links_of(target) {
                    l.repair();
                }
                self.refresh_all_health();
            }
            Fault::Link { target, config } => {
                for l in self.links_of(target) {
                    l.config = config.clone();
                }
                self.refresh_all_health();
            }
            Fault::Registrar { registrar, mode } => {
                if let Some(r) = self.registrars.get_mut(registrar % n_reg) {
                    r.set_mode(mode);
                }
                self.refresh_health(registrar % n_reg);
            }
            Fault::RestartRegistrar { registrar } => {
                if let Some(r) = self.registrars.get_mut(registrar % n_reg) {
                    r.restart();
                }
                self.update_registrar_deadline(registrar % n_reg);
            }
            Fault::Backend(mode) => self.backend.set_mode(mode),
            Fault::Provider { provider, change } => {
                let n = self.providers.len().max(1);
                if let Some((def, listed)) = self.providers.get_mut(provider % n) {
                    match change {
                        ProviderChange::Remove => *listed = false,
                        ProviderChange::Add => *listed = true,
                        ProviderChange::Credentials(right) => def.wrong_password = !right,
                        ProviderChange::Expires(e) => def.expires = e,
                        ProviderChange::Enabled(e) => def.enabled = e,
                        ProviderChange::Registrar(r) => def.registrar = r % n_reg,
                    }
                }
                self.publish_providers();
            }
            Fault::Streams { registrar, mode } => self.set_stream_mode(registrar % n_reg, mode),
            Fault::DropConnections { registrar, reset } => {
                self.drop_connections(registrar % n_reg, reset);
            }
            Fault::Command(SimCommand::Resync) => self.command(Command::Resync),
            Fault::Command(SimCommand::Reregister { provider }) => {
                let id = self.provider_id(provider);
                let now = self.clock.now();
                self.register.reregister_commanded(&id, now);
                self.command(Command::Reregister { id });
            }
        }
        // A repaired (or reconfigured) link lets what partitions held move on.
        self.streams_unstall();
    }

    fn traced_fault(&mut self, text: &str) {
        let at = self.clock.elapsed();
        self.trace.record(at, TraceEvent::Fault(text));
    }

    /// The end of the fault phase: every link back to its base behaviour without loss
    /// and without partitions, every registrar normal, the backend up.
    pub(super) fn heal(&mut self) {
        self.phase("heal: links repaired, faults stopped");
        for (i, def) in self.scenario.registrars.iter().enumerate() {
            if let Some(l) = self.links.get_mut(i) {
                l.config = LinkConfig {
                    loss: 0.0,
                    ..def.link.clone()
                };
                l.repair();
            }
        }
        self.backend_link.config = LinkConfig {
            loss: 0.0,
            ..self.scenario.backend_link.clone()
        };
        self.backend_link.repair();
        self.peers.heal();
        for r in &mut self.registrars {
            r.set_mode(Mode::Normal);
        }
        self.backend.set_mode(BackendMode::Up);
        self.heal_streams();
        self.refresh_all_health();
    }
}
