//! RFC 3263 §4: where requests to a SIP host go — the transport, then the ordered list
//! of `ip:port` targets to try.
//!
//! Run as a pure function over the answer cache: [`locate`] takes the steps whose
//! answers are cached and starts the queries the next step needs (all of them at once,
//! e.g. the A/AAAA of every SRV target), returning [`Located::Pending`]; the waiter is
//! told when an answer arrives and calls it again. The steps:
//!
//! - an IP literal is the target itself (port: the given one, else the transport's
//!   default); its address query still goes to the driver, which says our local
//!   address towards it;
//! - a name with a port: its A/AAAA records, at that port (§4.2);
//! - a name without a port, with a transport (every provider: its entry names one):
//!   the SRV records of `_sip._udp.`, `_sip._tcp.` or `_sips._tcp.` + name, each
//!   target's A/AAAA, in [`super::srv_order`]'s order; no SRV records: the name's
//!   A/AAAA at the default port (§4.2);
//! - a name without a port or transport (a destination URI such as
//!   `sip:+1555@sip.livekit.cloud`): NAPTR first (§4.1) — the most preferred record
//!   whose service we speak (`SIP+D2U`, `SIP+D2T`, `SIPS+D2T`) names the transport and
//!   the SRV name; no NAPTR records: the SRV names of UDP, TCP and TLS, the first of
//!   them that has records wins; none: UDP at the default port.
//!
//! A lookup that fails (timeout, server failure) fails the location, with the name
//! and the reason; an A/AAAA failure of one SRV target only drops that target.

use super::{srv_order, Cached, Dns, Waiter};
use crate::io::{Output, QueryKind, Records, SrvRecord};
use crate::transport::Transport;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// What to locate: a URI's host and, where the URI says them, its port and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// A name or an IP literal (an IPv6 one with or without brackets).
    pub host: &'a str,
    pub port: Option<u16>,
    /// `None`: not given (RFC 3263 §4.1 looks for NAPTR records).
    pub transport: Option<Transport>,
}

/// Where requests to a [`Place`] go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub transport: Transport,
    /// In the order to try them; never empty.
    pub addrs: Vec<SocketAddr>,
    /// Our local address towards the first target, when the driver said it.
    pub local_ip: Option<IpAddr>,
    /// When the first of the answers used runs out: look again after it.
    pub until: Instant,
}

/// The outcome of one [`locate`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    Ready(Targets),
    /// Why no target can be had (it names what was looked up).
    Failed(String),
    /// Queries are under way; the waiter is told when an answer arrives.
    Pending,
}

/// The effects [`locate`] may have: queries to start for a waiter.
pub struct Asker<'a> {
    pub dns: &'a mut Dns,
    pub waiter: Waiter,
    pub out: &'a mut VecDeque<Output>,
    pub next_query: &'a mut u64,
    /// Use answers whose TTL ran out when there is no fresh one (asking again
    /// meanwhile): to decide where a failing request goes next, not where a new one
    /// starts. See [`Dns::get_stale`].
    pub stale_ok: bool,
    /// Names served stale in this call, asked again at its end.
    pub refresh: Vec<(QueryKind, String)>,
}

impl<'a> Asker<'a> {
    /// An asker for `waiter` over `dns`, fresh answers only.
    pub fn new(
        dns: &'a mut Dns,
        waiter: Waiter,
        out: &'a mut VecDeque<Output>,
        next_query: &'a mut u64,
    ) -> Asker<'a> {
        Asker {
            dns,
            waiter,
            out,
            next_query,
            stale_ok: false,
            refresh: Vec::new(),
        }
    }

    fn ask(&mut self, kind: QueryKind, name: &str) {
        self.dns
            .wait(kind, name, self.waiter, self.out, self.next_query);
    }
}

/// One step's view of a lookup.
enum Step<'a> {
    Done(&'a Records, Instant),
    Failed(String),
    Missing,
}

fn step<'a>(
    dns: &'a Dns,
    stale_ok: bool,
    refresh: &mut Vec<(QueryKind, String)>,
    kind: QueryKind,
    name: &str,
    now: Instant,
) -> Step<'a> {
    match dns.get(kind, name, now) {
        Cached::Ready(answer, until) => Step::Done(&answer.records, until),
        Cached::Failed(e, _) => Step::Failed(format!("cannot resolve {name}: {e}")),
        Cached::Missing => match dns.get_stale(kind, name).filter(|_| stale_ok) {
            Some((answer, until)) => {
                refresh.push((kind, name.to_owned()));
                Step::Done(&answer.records, until)
            }
            None => Step::Missing,
        },
    }
}

/// Locates `place` at `now`; `seed` draws the order among SRV records of one priority
/// (see [`srv_order`]: per registration or call, so that load spreads by weight).
pub fn locate(place: Place<'_>, now: Instant, seed: u64, asker: &mut Asker<'_>) -> Located {
    let located = locate_now(place, now, seed, asker);
    for (kind, name) in std::mem::take(&mut asker.refresh) {
        asker.ask(kind, &name);
    }
    located
}

fn locate_now(place: Place<'_>, now: Instant, seed: u64, asker: &mut Asker<'_>) -> Located {
    let host = place
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(place.host);
    let literal = host.parse::<IpAddr>().is_ok();
    if literal || place.port.is_some() {
        let transport = place.transport.unwrap_or(Transport::Udp);
        let port = place.port.unwrap_or(transport.default_port());
        return addresses(place.host, transport, port, now, asker);
    }
    let transport = match place.transport {
        Some(t) => t,
        None => match naptr(host, now, asker) {
            NaptrPick::Pending => return Located::Pending,
            NaptrPick::Failed(e) => return Located::Failed(e),
            NaptrPick::Srv(transport, name) => {
                return services(&name, place.host, transport, now, seed, asker)
            }
            NaptrPick::None => match first_srv(host, now, asker) {
                SrvPick::Pending => return Located::Pending,
                SrvPick::Failed(e) => return Located::Failed(e),
                SrvPick::Found(t) => t,
                SrvPick::None => Transport::Udp,
            },
        },
    };
    services(
        &srv_name(transport, host),
        place.host,
        transport,
        now,
        seed,
        asker,
    )
}

/// `_sip._udp.host`, `_sip._tcp.host` or `_sips._tcp.host` (RFC 3263 §4.2, RFC 5630
/// for TLS).
pub fn srv_name(transport: Transport, host: &str) -> String {
    match transport {
        Transport::Udp => format!("_sip._udp.{host}"),
        Transport::Tcp => format!("_sip._tcp.{host}"),
        Transport::Tls => format!("_sips._tcp.{host}"),
    }
}

/// The A/AAAA of `host`, all at `port`.
fn addresses(
    host: &str,
    transport: Transport,
    port: u16,
    now: Instant,
    asker: &mut Asker<'_>,
) -> Located {
    match step(
        asker.dns,
        asker.stale_ok,
        &mut asker.refresh,
        QueryKind::Address,
        host,
        now,
    ) {
        Step::Done(Records::Addresses(res), until) => {
            if res.addrs.is_empty() {
                return Located::Failed(format!("{host} has no address (A/AAAA) records"));
            }
            Located::Ready(Targets {
                transport,
                addrs: res
                    .addrs
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, port))
                    .collect(),
                local_ip: res.local_ip,
                until,
            })
        }
        Step::Done(..) => {
            Located::Failed(format!("{host}: the resolver answered another record type"))
        }
        Step::Failed(e) => Located::Failed(e),
        Step::Missing => {
            asker.ask(QueryKind::Address, host);
            Located::Pending
        }
    }
}

/// The SRV records of `name`, then the addresses of their targets; no records: the
/// A/AAAA of `host` at the transport's default port.
fn services(
    name: &str,
    host: &str,
    transport: Transport,
    now: Instant,
    seed: u64,
    asker: &mut Asker<'_>,
) -> Located {
    let (records, srv_until) = match step(
        asker.dns,
        asker.stale_ok,
        &mut asker.refresh,
        QueryKind::Srv,
        name,
        now,
    ) {
        Step::Done(Records::Services(r), until) => (r.clone(), until),
        Step::Done(..) => {
            return Located::Failed(format!("{name}: the resolver answered another record type"))
        }
        Step::Failed(e) => return Located::Failed(e),
        Step::Missing => {
            asker.ask(QueryKind::Srv, name);
            return Located::Pending;
        }
    };
    let ordered: Vec<&SrvRecord> = srv_order::order(&records, seed);
    if ordered.is_empty() {
        if !records.is_empty() {
            // Only "." targets: the service is decidedly not offered (RFC 2782).
            return Located::Failed(format!("{name} says the service is not available there"));
        }
        return addresses(host, transport, transport.default_port(), now, asker);
    }
    let mut addrs = Vec::new();
    let mut local_ip = None;
    let mut until = srv_until;
    let mut missing = false;
    let mut first_error = None;
    for record in &ordered {
        match step(
            asker.dns,
            asker.stale_ok,
            &mut asker.refresh,
            QueryKind::Address,
            &record.target,
            now,
        ) {
            Step::Done(Records::Addresses(res), t) => {
                until = until.min(t);
                if addrs.is_empty() {
                    local_ip = res.local_ip;
                }
                addrs.extend(res.addrs.iter().map(|ip| SocketAddr::new(*ip, record.port)));
            }
            Step::Done(..) => {}
            Step::Failed(e) => {
                first_error.get_or_insert(e);
            }
            Step::Missing => {
                missing = true;
                asker.ask(QueryKind::Address, &record.target);
            }
        }
    }
    if missing {
        return Located::Pending;
    }
    addrs.dedup();
    if addrs.is_empty() {
        return Located::Failed(first_error.unwrap_or_else(|| {
            format!("the SRV targets of {name} have no address (A/AAAA) records")
        }));
    }
    Located::Ready(Targets {
        transport,
        addrs,
        local_ip,
        until,
    })
}

enum NaptrPick {
    Srv(Transport, String),
    None,
    Failed(String),
    Pending,
}

/// The NAPTR records of `host`: the most preferred one for a transport we speak.
fn naptr(host: &str, now: Instant, asker: &mut Asker<'_>) -> NaptrPick {
    match step(
        asker.dns,
        asker.stale_ok,
        &mut asker.refresh,
        QueryKind::Naptr,
        host,
        now,
    ) {
        Step::Done(Records::Naptr(records), _) => {
            let mut usable: Vec<_> = records
                .iter()
                .filter(|r| r.flags.eq_ignore_ascii_case("s"))
                .filter_map(|r| naptr_transport(&r.services).map(|t| (r, t)))
                .collect();
            usable.sort_by_key(|(r, _)| (r.order, r.preference));
            match usable.first() {
                Some((r, t)) => NaptrPick::Srv(*t, r.replacement.clone()),
                None => NaptrPick::None,
            }
        }
        Step::Done(..) => NaptrPick::None,
        Step::Failed(e) => NaptrPick::Failed(e),
        Step::Missing => {
            asker.ask(QueryKind::Naptr, host);
            NaptrPick::Pending
        }
    }
}

/// RFC 3263 §4.1's services, as RFC 3263 and RFC 5630 name them.
fn naptr_transport(services: &str) -> Option<Transport> {
    match services.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

enum SrvPick {
    Found(Transport),
    None,
    Failed(String),
    Pending,
}

/// Without NAPTR records: the first transport, in the order UDP, TCP, TLS, whose SRV
/// name has records (all three asked at once).
fn first_srv(host: &str, now: Instant, asker: &mut Asker<'_>) -> SrvPick {
    let mut missing = false;
    let mut found = None;
    for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let name = srv_name(t, host);
        match step(
            asker.dns,
            asker.stale_ok,
            &mut asker.refresh,
            QueryKind::Srv,
            &name,
            now,
        ) {
            Step::Done(Records::Services(r), _) if !r.is_empty() => {
                found.get_or_insert(t);
            }
            Step::Done(..) => {}
            Step::Failed(e) => return SrvPick::Failed(e),
            Step::Missing => {
                missing = true;
                asker.ask(QueryKind::Srv, &name);
            }
        }
        if found.is_some() && !missing {
            break;
        }
    }
    match (missing, found) {
        (true, _) => SrvPick::Pending,
        (false, Some(t)) => SrvPick::Found(t),
        (false, None) => SrvPick::None,
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // tests anchor virtual time once
mod tests {
    use super::*;
    use crate::io::{Answer, NaptrRecord, Resolution};
    use std::time::Duration;

    /// A cache and the queries asked of it, answered from a table.
    struct World {
        dns: Dns,
        out: VecDeque<Output>,
        next: u64,
        now: Instant,
    }

    impl World {
        fn new() -> World {
            World {
                dns: Dns::default(),
                out: VecDeque::new(),
                next: 0,
                now: Instant::now(),
            }
        }

        fn locate(&mut self, place: Place<'_>) -> Located {
            let waiter = Waiter::Registration(1);
            let mut asker = Asker::new(&mut self.dns, waiter, &mut self.out, &mut self.next);
            locate(place, self.now, 7, &mut asker)
        }

        /// Answers every query asked so far with `answer(kind, name)`; returns them.
        fn answer(
            &mut self,
            answer: impl Fn(QueryKind, &str) -> Result<Answer, String>,
        ) -> Vec<(QueryKind, String)> {
            let mut asked = Vec::new();
            while let Some(o) = self.out.pop_front() {
                if let Output::Resolve(q) = o {
                    let result = answer(q.kind, &q.host);
                    self.dns.answer(q.id, result, self.now);
                    asked.push((q.kind, q.host));
                }
            }
            asked
        }
    }

    fn ips(list: &[&str], ttl: u64) -> Result<Answer, String> {
        Ok(Answer {
            records: Records::Addresses(Resolution {
                addrs: list.iter().map(|s| s.parse().unwrap()).collect(),
                local_ip: None,
            }),
            ttl: Some(Duration::from_secs(ttl)),
        })
    }

    fn srvs(list: &[(u16, u16, u16, &str)]) -> Result<Answer, String> {
        Ok(Answer {
            records: Records::Services(
                list.iter()
                    .map(|&(priority, weight, port, target)| SrvRecord {
                        priority,
                        weight,
                        port,
                        target: target.into(),
                    })
                    .collect(),
            ),
            ttl: Some(Duration::from_secs(60)),
        })
    }

    fn none(kind: QueryKind) -> Result<Answer, String> {
        let records = match kind {
            QueryKind::Address => Records::Addresses(Resolution {
                addrs: vec![],
                local_ip: None,
            }),
            QueryKind::Srv => Records::Services(vec![]),
            QueryKind::Naptr => Records::Naptr(vec![]),
        };
        Ok(Answer { records, ttl: None })
    }

    fn addrs(l: &Located) -> Vec<String> {
        match l {
            Located::Ready(t) => t.addrs.iter().map(ToString::to_string).collect(),
            other => panic!("not located: {other:?}"),
        }
    }

    #[test]
    fn a_port_means_addresses_only() {
        let mut w = World::new();
        let place = Place {
            host: "sip.example.test",
            port: Some(5080),
            transport: Some(Transport::Tcp),
        };
        assert_eq!(w.locate(place), Located::Pending);
        let asked = w.answer(|_, _| ips(&["127.0.0.2", "127.0.0.3"], 30));
        assert_eq!(
            asked,
            vec![(QueryKind::Address, "sip.example.test".to_owned())]
        );
        let l = w.locate(place);
        assert_eq!(addrs(&l), ["127.0.0.2:5080", "127.0.0.3:5080"]);
        let Located::Ready(t) = l else { unreachable!() };
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.until, w.now + Duration::from_secs(30));
    }

    #[test]
    fn srv_by_priority_then_their_addresses_at_their_ports() {
        let mut w = World::new();
        let place = Place {
            host: "example.test",
            port: None,
            transport: Some(Transport::Udp),
        };
        assert_eq!(w.locate(place), Located::Pending);
        let asked = w.answer(|_, _| {
            srvs(&[
                (20, 0, 5070, "b.example.test"),
                (10, 0, 5060, "a.example.test"),
            ])
        });
        assert_eq!(
            asked,
            vec![(QueryKind::Srv, "_sip._udp.example.test".to_owned())]
        );
        // Both targets' addresses asked at once.
        assert_eq!(w.locate(place), Located::Pending);
        let asked = w.answer(|_, name| match name {
            "a.example.test" => ips(&["127.0.0.2"], 300),
            _ => ips(&["127.0.0.3"], 20),
        });
        assert_eq!(asked.len(), 2);
        let l = w.locate(place);
        assert_eq!(addrs(&l), ["127.0.0.2:5060", "127.0.0.3:5070"]);
        let Located::Ready(t) = l else { unreachable!() };
        assert_eq!(
            t.until,
            w.now + Duration::from_secs(20),
            "the shortest TTL used"
        );
    }

    #[test]
    fn no_srv_records_fall_back_to_the_host_at_the_default_port() {
        let mut w = World::new();
        let place = Place {
            host: "example.test",
            port: None,
            transport: Some(Transport::Tls),
        };
        w.locate(place);
        let asked = w.answer(|kind, _| none(kind));
        assert_eq!(
            asked,
            vec![(QueryKind::Srv, "_sips._tcp.example.test".to_owned())]
        );
        w.locate(place);
        w.answer(|_, _| ips(&["127.0.0.4"], 60));
        assert_eq!(addrs(&w.locate(place)), ["127.0.0.4:5061"]);
    }

    #[test]
    fn a_failing_lookup_fails_with_the_name_and_one_bad_target_is_dropped() {
        let mut w = World::new();
        let place = Place {
            host: "example.test",
            port: None,
            transport: Some(Transport::Udp),
        };
        w.locate(place);
        w.answer(|_, _| Err("DNS server 127.0.0.1:53 did not answer".into()));
        let Located::Failed(e) = w.locate(place) else {
            panic!()
        };
        assert!(
            e.contains("_sip._udp.example.test") && e.contains("did not answer"),
            "{e}"
        );

        let mut w = World::new();
        w.locate(place);
        w.answer(|_, _| {
            srvs(&[
                (10, 0, 5060, "a.example.test"),
                (20, 0, 5060, "b.example.test"),
            ])
        });
        w.locate(place);
        w.answer(|_, name| match name {
            "a.example.test" => Err("SERVFAIL".into()),
            _ => ips(&["127.0.0.3"], 60),
        });
        assert_eq!(addrs(&w.locate(place)), ["127.0.0.3:5060"]);
    }

    #[test]
    fn naptr_picks_the_transport_and_the_srv_name() {
        let mut w = World::new();
        let place = Place {
            host: "livekit.example.test",
            port: None,
            transport: None,
        };
        w.locate(place);
        let asked = w.answer(|_, _| {
            Ok(Answer {
                records: Records::Naptr(vec![
                    NaptrRecord {
                        order: 10,
                        preference: 20,
                        flags: "s".into(),
                        services: "SIP+D2U".into(),
                        replacement: "_sip._udp.livekit.example.test".into(),
                    },
                    NaptrRecord {
                        order: 10,
                        preference: 10,
                        flags: "S".into(),
                        services: "SIPS+D2T".into(),
                        replacement: "_sips._tcp.livekit.example.test".into(),
                    },
                    NaptrRecord {
                        order: 1,
                        preference: 1,
                        flags: "s".into(),
                        services: "SIP+D2S".into(),
                        replacement: "_sip._sctp.livekit.example.test".into(),
                    },
                ]),
                ttl: None,
            })
        });
        assert_eq!(
            asked,
            vec![(QueryKind::Naptr, "livekit.example.test".to_owned())]
        );
        w.locate(place);
        let asked = w.answer(|_, _| srvs(&[(1, 0, 5061, "lk.example.test")]));
        assert_eq!(
            asked,
            vec![(QueryKind::Srv, "_sips._tcp.livekit.example.test".to_owned())]
        );
        w.locate(place);
        w.answer(|_, _| ips(&["127.0.0.5"], 60));
        let l = w.locate(place);
        assert_eq!(addrs(&l), ["127.0.0.5:5061"]);
        let Located::Ready(t) = l else { unreachable!() };
        assert_eq!(
            t.transport,
            Transport::Tls,
            "SCTP skipped, TLS preferred over UDP"
        );
    }

    #[test]
    fn without_naptr_the_first_transport_with_srv_records_wins() {
        let mut w = World::new();
        let place = Place {
            host: "example.test",
            port: None,
            transport: None,
        };
        w.locate(place);
        w.answer(|kind, _| none(kind));
        w.locate(place);
        let asked = w.answer(|kind, name| match name {
            "_sip._tcp.example.test" => srvs(&[(1, 0, 5060, "t.example.test")]),
            _ => none(kind),
        });
        assert_eq!(asked.len(), 3, "UDP, TCP and TLS asked at once: {asked:?}");
        w.locate(place);
        w.answer(|_, _| ips(&["127.0.0.6"], 60));
        let Located::Ready(t) = w.locate(place) else {
            panic!()
        };
        assert_eq!(t.transport, Transport::Tcp);

        // Nothing at all: UDP to the host at 5060.
        let mut w = World::new();
        for _ in 0..3 {
            w.locate(place);
            w.answer(|kind, name| match (kind, name) {
                (QueryKind::Address, _) => ips(&["127.0.0.7"], 60),
                _ => none(kind),
            });
        }
        let l = w.locate(place);
        assert_eq!(addrs(&l), ["127.0.0.7:5060"]);
    }

    #[test]
    fn ip_literals_are_their_own_target() {
        let mut w = World::new();
        let place = Place {
            host: "[::1]",
            port: None,
            transport: Some(Transport::Tls),
        };
        w.locate(place);
        let asked = w.answer(|_, _| ips(&["::1"], 60));
        assert_eq!(asked, vec![(QueryKind::Address, "[::1]".to_owned())]);
        assert_eq!(addrs(&w.locate(place)), ["[::1]:5061"]);
    }
}
