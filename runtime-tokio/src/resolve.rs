//! Name resolution for the core's [`sip_core::Output::Resolve`] queries.

use sip_core::Resolution;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Resolves `host` (A/AAAA through the system resolver) and finds our source address
/// towards the first answer when `need_local` (no public address configured and the
/// socket bound to the unspecified address).
pub async fn resolve(host: String, need_local: Option<IpAddr>) -> Result<Resolution, String> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .parse::<IpAddr>()
        .ok();
    let addrs: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => tokio::net::lookup_host((host.as_str(), 5060))
            .await
            .map_err(|e| e.to_string())?
            .map(|sa| sa.ip())
            .collect(),
    };
    let local_ip = match (need_local, addrs.first()) {
        (Some(bind), Some(first)) => local_ip_towards(bind, *first),
        _ => None,
    };
    Ok(Resolution { addrs, local_ip })
}

/// The source address the OS would pick towards `remote`: connecting an unbound UDP
/// socket only consults the routing table; no packet is sent.
fn local_ip_towards(bind: IpAddr, remote: IpAddr) -> Option<IpAddr> {
    let sock = UdpSocket::bind(SocketAddr::new(bind, 0)).ok()?;
    sock.connect(SocketAddr::new(remote, 5060)).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}
