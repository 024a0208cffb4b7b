//! The call peers: a provider model per registrar placing calls from that registrar's
//! address (over the registrar's link), the stranger placing calls from an address
//! that is no provider's, and the LiveKit models the core bridges calls to; their
//! datagrams, deadlines and the scheduled calls. Every crossing feeds the call checks.

use super::route::track_deadline;
use super::{Pending, Sim};
use crate::check::calls::{CallChecks, CallWorld, Side};
use crate::models::livekit::{LiveKit, LiveKitConfig};
use crate::models::provider::{CallSpec, Provider, ProviderConfig};
use crate::models::sip::{Credentials, TimerValues};
use crate::net::{Direction, Fate, Link, LinkConfig};
use crate::rng::SimRng;
use crate::scenario::{
    caller_addr, livekit_addr, livekit_host, livekit_name, CallSource, Scenario, CORE_ADDR,
    LIVEKIT_PASSWORD, LIVEKIT_USERNAME, STRANGER_ADDR,
};
use crate::trace::TraceEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A peer's model.
#[derive(Debug)]
enum Model {
    Caller(Box<Provider>),
    Callee(Box<LiveKit>),
}

/// Which link a peer's datagrams cross.
#[derive(Debug)]
pub(super) enum PeerLink {
    /// Its registrar's (a provider's calls come over the same path as its REGISTERs).
    Registrar(usize),
    /// Its own, healed back to `base`.
    Own { link: Link, base: LinkConfig },
}

/// One call peer.
#[derive(Debug)]
struct Peer {
    name: String,
    addr: SocketAddr,
    side: Side,
    link: PeerLink,
    model: Model,
}

/// Every call peer of a run and what the checks saw of them.
#[derive(Debug, Default)]
pub(super) struct Peers {
    list: Vec<Peer>,
    by_addr: BTreeMap<SocketAddr, usize>,
    deadline: Vec<Option<Instant>>,
    deadlines: BTreeSet<(Instant, usize)>,
    /// Registrar index → its caller peer.
    caller_of: BTreeMap<usize, usize>,
    stranger: Option<usize>,
    /// LiveKit index → its peer.
    callee_of: Vec<usize>,
    checks: CallChecks,
    /// Calls placed so far (the core may hold at most this many).
    placed: usize,
}

impl Peers {
    /// The peers `scenario` needs (none without calls), and the DNS names of the
    /// LiveKit models.
    pub(super) fn new(
        scenario: &Scenario,
        seeds: &mut SimRng,
        dns: &mut BTreeMap<String, IpAddr>,
    ) -> Self {
        let mut peers = Self::default();
        if scenario.calls.is_empty() {
            return peers;
        }
        for i in 0..scenario.registrars.len() {
            let addr = caller_addr(i);
            let model = Provider::new(
                ProviderConfig {
                    local: addr,
                    domain: format!("carrier-{i}.sim.test"),
                    timers: TimerValues::default(),
                },
                seeds.next_u64(),
            );
            let at = peers.add(Peer {
                name: format!("prov-{i}"),
                addr,
                side: Side::Caller,
                link: PeerLink::Registrar(i),
                model: Model::Caller(Box::new(model)),
            });
            peers.caller_of.insert(i, at);
        }
        if scenario
            .calls
            .iter()
            .any(|c| c.from == CallSource::Stranger)
        {
            let model = Provider::new(
                ProviderConfig {
                    local: STRANGER_ADDR,
                    domain: "stranger.sim.test".to_owned(),
                    timers: TimerValues::default(),
                },
                seeds.next_u64(),
            );
            let base = LinkConfig::lan();
            peers.stranger = Some(peers.add(Peer {
                name: "stranger".to_owned(),
                addr: STRANGER_ADDR,
                side: Side::Stranger,
                link: PeerLink::Own {
                    link: Link::new(base.clone()),
                    base,
                },
                model: Model::Caller(Box::new(model)),
            }));
        }
        for (i, def) in scenario.livekits.iter().enumerate() {
            let addr = livekit_addr(i);
            dns.insert(livekit_host(i), addr.ip());
            let config = LiveKitConfig {
                local: addr,
                ring_after: def.ring_after,
                answer_after: def.answer_after,
                answer: def.answer,
                auth: def.challenge.then(|| Credentials {
                    username: LIVEKIT_USERNAME.to_owned(),
                    password: LIVEKIT_PASSWORD.to_owned(),
                }),
                hang_up_after: def.hang_up_after,
                refer_after: def.refer_after,
                timers: TimerValues::default(),
            };
            let at = peers.add(Peer {
                name: livekit_name(i),
                addr,
                side: Side::Callee,
                link: PeerLink::Own {
                    link: Link::new(def.link.clone()),
                    base: def.link.clone(),
                },
                model: Model::Callee(Box::new(LiveKit::new(config, seeds.next_u64()))),
            });
            peers.callee_of.push(at);
        }
        peers
    }

    fn add(&mut self, peer: Peer) -> usize {
        self.by_addr.insert(peer.addr, self.list.len());
        self.list.push(peer);
        self.deadline.push(None);
        self.list.len() - 1
    }

    /// Peer `index`'s name, address and side.
    fn identity(&self, index: usize) -> Option<(String, SocketAddr, Side)> {
        self.list
            .get(index)
            .map(|p| (p.name.clone(), p.addr, p.side))
    }

    /// The peer at `addr`, if any.
    pub(super) fn at(&self, addr: SocketAddr) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }

    /// The earliest model deadline.
    pub(super) fn next_deadline(&self) -> Option<(Instant, usize)> {
        self.deadlines.first().copied()
    }

    /// Calls placed so far.
    pub(super) fn placed(&self) -> usize {
        self.placed
    }

    /// The own links of LiveKit model `index` (`None`: all own links).
    pub(super) fn own_links(&mut self, index: Option<usize>) -> Vec<&mut Link> {
        let wanted: Option<usize> = index.and_then(|i| {
            let n = self.callee_of.len();
            (n > 0)
                .then(|| self.callee_of.get(i % n).copied())
                .flatten()
        });
        if index.is_some() && wanted.is_none() {
            return Vec::new();
        }
        self.list
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| wanted.is_none_or(|w| w == *i))
            .filter_map(|(_, p)| match &mut p.link {
                PeerLink::Own { link, .. } => Some(link),
                PeerLink::Registrar(_) => None,
            })
            .collect()
    }

    /// The end of the fault phase: own links back to their base, without loss.
    pub(super) fn heal(&mut self) {
        for p in &mut self.list {
            if let PeerLink::Own { link, base } = &mut p.link {
                link.config = LinkConfig {
                    loss: 0.0,
                    ..base.clone()
                };
                link.repair();
            }
        }
    }

    /// What the end-of-run call check reads.
    pub(super) fn check_end(&self, f: &mut crate::check::Findings, core: &sip_core::Controller) {
        let mut world = CallWorld {
            core_active: core.active_calls(),
            core_views: core.calls().len(),
            core_transactions: core.call_transactions(),
            callers: Vec::new(),
            callees: Vec::new(),
        };
        for p in &self.list {
            match &p.model {
                Model::Caller(m) => world.callers.push((p.name.as_str(), m)),
                Model::Callee(m) => world.callees.push((p.name.as_str(), m)),
            }
        }
        self.checks.check_end(f, &world);
    }
}

/// What the link of peer `index` does with a datagram going `dir`.
fn peer_fate(
    peers: &Peers,
    registrar_links: &[Link],
    index: usize,
    dir: Direction,
    rng: &mut SimRng,
) -> Fate {
    let link = peers.list.get(index).and_then(|p| match &p.link {
        PeerLink::Registrar(r) => registrar_links.get(*r),
        PeerLink::Own { link, .. } => Some(link),
    });
    match link {
        Some(link) => link.send(dir, rng),
        None => Fate::Blocked,
    }
}

impl Sim {
    /// Scheduled call `i` is placed by its caller now.
    pub(super) fn place_call(&mut self, i: usize) {
        let Some(def) = self.scenario.calls.get(i).cloned() else {
            return;
        };
        let peer = match def.from {
            CallSource::Stranger => self.peers.stranger,
            CallSource::Provider(p) => {
                let n = self.providers.len().max(1);
                let registrar = self.providers.get(p % n).map(|(d, _)| d.registrar);
                registrar.and_then(|r| self.peers.caller_of.get(&r).copied())
            }
        };
        let Some(index) = peer else {
            return;
        };
        let spec = CallSpec {
            target: CORE_ADDR,
            request_uri: format!("sip:{}@{CORE_ADDR}", def.did),
            to_uri: None,
            caller: format!("+1555000{i:04}"),
            display_name: Some(format!("Caller {i}")),
            extra_headers: Vec::new(),
            ending: def.ending,
            credentials: None,
            reinvite_after: def.reinvite_after,
        };
        let now = self.clock.now();
        let out = match self.peers.list.get_mut(index).map(|p| &mut p.model) {
            Some(Model::Caller(m)) => m.place_call(now, spec).1,
            _ => return,
        };
        self.peers.placed += 1;
        self.after_peer(index, out);
    }

    /// The core sent `bytes` to peer `index`.
    pub(super) fn core_to_peer(&mut self, index: usize, bytes: &[u8]) {
        let Some((name, addr, side)) = self.peers.identity(index) else {
            return;
        };
        self.peers
            .checks
            .on_core_sends(&mut self.findings, addr, side, bytes);
        let fate = peer_fate(
            &self.peers,
            &self.links,
            index,
            Direction::ToPeer,
            &mut self.net_rng,
        );
        self.traced(TraceEvent::Sip {
            from: "trunkline",
            to: &name,
            bytes,
            fate: &fate,
        });
        let now = self.clock.now();
        if let Fate::Arrives(delays) = fate {
            for d in delays {
                self.queue.push(
                    now + d,
                    Pending::ToPeer {
                        index,
                        bytes: bytes.to_vec(),
                    },
                );
            }
        }
    }

    /// A datagram from the core reaches peer `index`.
    pub(super) fn deliver_to_peer(&mut self, index: usize, bytes: &[u8]) {
        let now = self.clock.now();
        let out = match self.peers.list.get_mut(index).map(|p| &mut p.model) {
            Some(Model::Caller(m)) => m.handle_datagram(now, CORE_ADDR, bytes),
            Some(Model::Callee(m)) => m.handle_datagram(now, CORE_ADDR, bytes),
            None => Vec::new(),
        };
        self.after_peer(index, out);
    }

    /// Peer `index`'s deadline came.
    pub(super) fn peer_timeout(&mut self, index: usize) {
        let now = self.clock.now();
        let out = match self.peers.list.get_mut(index).map(|p| &mut p.model) {
            Some(Model::Caller(m)) => m.handle_timeout(now),
            Some(Model::Callee(m)) => m.handle_timeout(now),
            None => Vec::new(),
        };
        self.after_peer(index, out);
    }

    /// Whether a datagram from `from` is a peer's: it is checked before the core reads it.
    pub(super) fn peer_datagram_arrives(&mut self, from: SocketAddr, bytes: &[u8]) {
        if let Some(side) = self
            .peers
            .at(from)
            .and_then(|i| self.peers.list.get(i))
            .map(|p| p.side)
        {
            self.peers.checks.on_core_receives(from, side, bytes);
        }
    }

    /// Sends peer `index`'s datagrams towards the core and tracks its deadline.
    fn after_peer(&mut self, index: usize, out: Vec<(SocketAddr, Vec<u8>)>) {
        let Some((name, addr, side)) = self.peers.identity(index) else {
            return;
        };
        for (to, bytes) in out {
            self.peers
                .checks
                .on_peer_sends(&mut self.findings, side, &bytes);
            let fate = if to == CORE_ADDR {
                peer_fate(
                    &self.peers,
                    &self.links,
                    index,
                    Direction::FromPeer,
                    &mut self.net_rng,
                )
            } else {
                Fate::Blocked
            };
            self.towards_core(|| name.clone(), addr, bytes, fate);
        }
        let next = self.peers.list.get(index).and_then(|p| match &p.model {
            Model::Caller(m) => m.poll_timeout(),
            Model::Callee(m) => m.poll_timeout(),
        });
        let peers = &mut self.peers;
        track_deadline(&mut peers.deadline, &mut peers.deadlines, index, next);
    }
}
