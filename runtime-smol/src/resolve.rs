//! Name resolution for the core's [`sip_core::Output::Resolve`] queries, on smol's
//! blocking pool (the system resolver blocks).

use sip_core::Resolution;
use std::net::{IpAddr, ToSocketAddrs};

/// Resolves `host` (A/AAAA through the system resolver) and, when `need_local` holds
/// the bind address (no public address configured), finds our source address towards
/// the first answer.
pub async fn resolve(host: String, need_local: Option<IpAddr>) -> Result<Resolution, String> {
    smol::unblock(move || resolve_blocking(&host, need_local)).await
}

fn resolve_blocking(host: &str, need_local: Option<IpAddr>) -> Result<Resolution, String> {
    let addrs: Vec<IpAddr> = match driver_net::ip_literal(host) {
        Some(ip) => vec![ip],
        None => (host, 5060)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .map(|sa| sa.ip())
            .collect(),
    };
    Ok(driver_net::resolution(addrs, need_local))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn literals_need_no_lookup_and_learn_the_local_address() {
        let r = smol::block_on(resolve(
            "127.0.0.1".into(),
            Some(Ipv4Addr::LOCALHOST.into()),
        ))
        .unwrap();
        assert_eq!(r.addrs, vec![IpAddr::from(Ipv4Addr::LOCALHOST)]);
        assert_eq!(r.local_ip, Some(IpAddr::from(Ipv4Addr::LOCALHOST)));
        let r = smol::block_on(resolve("[::1]".into(), None)).unwrap();
        assert_eq!(r.addrs, vec![IpAddr::from(Ipv6Addr::LOCALHOST)]);
        assert_eq!(r.local_ip, None);
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        let r = smol::block_on(resolve("localhost".into(), None)).unwrap();
        assert!(!r.addrs.is_empty());
        assert!(r.addrs.iter().all(IpAddr::is_loopback), "{r:?}");
    }
}
