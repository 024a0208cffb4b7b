//! DNS for the core's [`sip_core::Output::Resolve`] queries, written once for both
//! drivers: A/AAAA, SRV and NAPTR (RFC 3263) with their TTLs, over hickory's resolver.
//!
//! hickory's [`Resolver`] is generic over its [`RuntimeProvider`] (sockets, timers, a
//! task spawner), so this module names no runtime: the tokio driver hands it hickory's
//! `TokioRuntimeProvider`, the smol driver a provider of its own. What an answer means
//! is decided here, the same for both:
//!
//! * records of the kind asked for, in the server's order, with the smallest TTL;
//! * an empty list (`Ok`) when the name or the record type does not exist (NXDOMAIN,
//!   NODATA), with the zone's negative-caching time when the server sent its SOA;
//! * `Err(text)` only when the lookup itself failed (no answer, SERVFAIL, no server
//!   reachable): the core asks again soon, where an empty answer would be believed.
//!
//! The core caches answers by their TTL itself, so hickory's cache is off.

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::RuntimeProvider;
use hickory_resolver::net::{NetError, NoRecords};
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, Resolver};
use sip_core::{Answer, NaptrRecord, QueryKind, Records, ResolveQuery, SrvRecord};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long one try waits for the server. Two tries (one retry) make a dead server an
/// error within about four seconds: a registration then fails over by its own backoff
/// instead of hanging on a lookup for the 10–15 s of the resolv.conf defaults.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Retries after a try that failed (timeout, SERVFAIL), so two tries in all.
pub const QUERY_RETRIES: usize = 1;

/// Why the resolver could not be set up; only at start, never per query.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The system configuration (`/etc/resolv.conf`) is missing, unreadable or names no
    /// server.
    #[error("cannot use the system's DNS configuration (/etc/resolv.conf): {0}")]
    SystemConfig(String),
    /// hickory refused the configuration.
    #[error("cannot set up the DNS resolver: {0}")]
    Build(String),
}

/// A DNS resolver answering the core's [`ResolveQuery`]s, on the runtime `P` brings.
/// Cheap to clone: each lookup task takes its own handle.
#[derive(Clone)]
pub struct Dns<P: RuntimeProvider> {
    resolver: Resolver<P>,
    /// `/etc/hosts` with the system configuration (empty with a fixed server), read once
    /// at start. Consulted here rather than by hickory so that its answers carry no TTL:
    /// hickory dates them a day from the moment the file was read, which after a day of
    /// uptime would tell the core to ask again on every use.
    hosts: Arc<Hosts>,
    /// The servers asked, for error texts ("DNS server 127.0.0.1:5353 did not answer").
    servers: Arc<str>,
}

impl<P: RuntimeProvider> std::fmt::Debug for Dns<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

/// What one lookup of one record type found.
enum Found {
    /// Records (possibly with a CNAME chain before them).
    Records(Lookup),
    /// The name or the type does not exist; the negative-caching time if known.
    Nothing(Option<Duration>),
}

impl<P: RuntimeProvider> Dns<P> {
    /// A resolver asking `server` only (UDP, TCP when an answer is truncated; no search
    /// domains, no `/etc/hosts`), or with `None` the system's configuration:
    /// `/etc/resolv.conf` (its servers, search domains and `ndots`) and `/etc/hosts`.
    /// Either way with our timeouts ([`QUERY_TIMEOUT`], [`QUERY_RETRIES`]).
    pub fn new(server: Option<SocketAddr>, provider: P) -> Result<Self, DnsError> {
        let (config, mut opts, hosts) = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
                (config, ResolverOpts::default(), Hosts::default())
            }
            None => {
                let (config, opts) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| DnsError::SystemConfig(e.to_string()))?;
                // No /etc/hosts is no error: the name servers answer everything.
                (config, opts, Hosts::from_system().unwrap_or_default())
            }
        };
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = QUERY_RETRIES;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        let servers = describe_servers(config.name_servers());
        let resolver = Resolver::builder_with_config(config, provider)
            .with_options(opts)
            .build()
            .map_err(|e| DnsError::Build(e.to_string()))?;
        Ok(Self {
            resolver,
            hosts: Arc::new(hosts),
            servers: servers.into(),
        })
    }

    /// The servers this resolver asks, e.g. `DNS server 127.0.0.1:53`.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// Answers `query`: see the module documentation for what `Ok` and `Err` mean. For
    /// addresses, `need_local` is the bind address when the core wants our source
    /// address towards the first one ([`crate::resolution`]).
    pub async fn answer(
        &self,
        query: &ResolveQuery,
        need_local: Option<IpAddr>,
    ) -> Result<Answer, String> {
        match query.kind {
            QueryKind::Address => self.addresses(&query.host, need_local).await,
            QueryKind::Srv => self.services(&query.host).await,
            QueryKind::Naptr => self.naptr(&query.host).await,
        }
    }

    /// A and AAAA, asked at once; IPv4 first, as most SIP peers (and many of the
    /// networks we run on) are reached over IPv4 and the core tries the first address.
    async fn addresses(&self, host: &str, need_local: Option<IpAddr>) -> Result<Answer, String> {
        if let Some(ip) = crate::ip_literal(host) {
            return Ok(Answer::from(crate::resolution(vec![ip], need_local)));
        }
        let name = parse_name(host)?;
        let listed = self.listed_in_hosts(&name);
        if !listed.is_empty() {
            return Ok(Answer::from(crate::resolution(listed, need_local)));
        }
        let (v4, v6) = futures_lite::future::zip(
            self.lookup(name.clone(), RecordType::A),
            self.lookup(name, RecordType::AAAA),
        )
        .await;
        let mut addrs = Vec::new();
        let mut ttl = None;
        let mut negative_ttl = None;
        let mut failure = None;
        for found in [v4, v6] {
            match found {
                Ok(Found::Records(lookup)) => {
                    addrs.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    }));
                    ttl = smaller(ttl, min_ttl(&lookup));
                }
                Ok(Found::Nothing(t)) => negative_ttl = smaller(negative_ttl, t),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if addrs.is_empty() {
            // "No A record" is only believable when the AAAA question was answered too.
            if let Some(e) = failure {
                return Err(self.failure(&e));
            }
            ttl = negative_ttl;
        }
        Ok(Answer {
            records: Records::Addresses(crate::resolution(addrs, need_local)),
            ttl,
        })
    }

    async fn services(&self, host: &str) -> Result<Answer, String> {
        self.records(
            host,
            RecordType::SRV,
            Records::Services,
            |data| match data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: plain(&srv.target),
                }),
                _ => None,
            },
        )
        .await
    }

    async fn naptr(&self, host: &str) -> Result<Answer, String> {
        self.records(host, RecordType::NAPTR, Records::Naptr, |data| match data {
            RData::NAPTR(n) => Some(NaptrRecord {
                order: n.order,
                preference: n.preference,
                flags: String::from_utf8_lossy(&n.flags).into_owned(),
                services: String::from_utf8_lossy(&n.services).into_owned(),
                replacement: plain(&n.replacement),
            }),
            _ => None,
        })
        .await
    }

    /// The records of `kind` for `host`, each read by `read` (others skipped) and put
    /// in the answer by `wrap`; "does not exist" is an empty answer.
    async fn records<T>(
        &self,
        host: &str,
        kind: RecordType,
        wrap: fn(Vec<T>) -> Records,
        read: fn(&RData) -> Option<T>,
    ) -> Result<Answer, String> {
        let found = self.lookup(parse_name(host)?, kind).await;
        Ok(match found.map_err(|e| self.failure(&e))? {
            Found::Records(lookup) => Answer {
                records: wrap(
                    lookup
                        .answers()
                        .iter()
                        .filter_map(|r| read(&r.data))
                        .collect(),
                ),
                ttl: min_ttl(&lookup),
            },
            Found::Nothing(ttl) => Answer {
                records: wrap(Vec::new()),
                ttl,
            },
        })
    }

    /// One question to the servers; "does not exist" is an answer, not an error.
    async fn lookup(&self, name: Name, kind: RecordType) -> Result<Found, NetError> {
        match self.resolver.lookup(name, kind).await {
            Ok(lookup) => Ok(Found::Records(lookup)),
            Err(NetError::Dns(hickory_resolver::net::DnsError::NoRecordsFound(NoRecords {
                negative_ttl,
                ..
            }))) => Ok(Found::Nothing(negative_ttl.map(seconds))),
            Err(e) => Err(e),
        }
    }

    /// The addresses `/etc/hosts` lists for `name`, IPv4 first.
    fn listed_in_hosts(&self, name: &Name) -> Vec<IpAddr> {
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|kind| {
                self.hosts
                    .lookup_static_host(&Query::query(name.clone(), kind))
            })
            .flat_map(|lookup| {
                lookup
                    .answers()
                    .iter()
                    .filter_map(|r| r.data.ip_addr())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What went wrong, in words an operator can act on.
    fn failure(&self, e: &NetError) -> String {
        let servers = &self.servers;
        match e {
            NetError::Timeout => format!("{servers} did not answer"),
            NetError::Dns(hickory_resolver::net::DnsError::ResponseCode(code)) => {
                format!("{servers} answered {}", rcode(*code))
            }
            NetError::NoConnections | NetError::Io(_) => {
                format!("{servers} not reachable: {e}")
            }
            _ => format!("DNS lookup failed ({servers}): {e}"),
        }
    }
}

/// `DNS server 10.0.0.2:53` or `DNS servers 10.0.0.2:53, 10.0.0.3:53`.
fn describe_servers(servers: &[NameServerConfig]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|ns| {
            let port = ns.connections.first().map_or(53, |c| c.port);
            SocketAddr::new(ns.ip, port).to_string()
        })
        .collect();
    match list.as_slice() {
        [one] => format!("DNS server {one}"),
        _ => format!("DNS servers {}", list.join(", ")),
    }
}

/// A response code as operators know it from dig.
fn rcode(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        other => format!("{} (rcode {})", other.to_str(), u16::from(other)),
    }
}

/// The name to ask for; a name DNS cannot carry is an error the operator must fix.
fn parse_name(host: &str) -> Result<Name, String> {
    Name::from_utf8(host).map_err(|e| format!("{host:?} is not a DNS name: {e}"))
}

/// A name as the core writes it: without the trailing dot, except the root `.` itself
/// (an SRV target `.` says "no service here").
fn plain(name: &Name) -> String {
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
        _ => text,
    }
}

/// The smallest TTL of a lookup's answers (a CNAME's too: the chain holds only as
/// long as its shortest link).
fn min_ttl(lookup: &Lookup) -> Option<Duration> {
    lookup.answers().iter().map(|r| r.ttl).min().map(seconds)
}

fn seconds(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl))
}

fn smaller(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
