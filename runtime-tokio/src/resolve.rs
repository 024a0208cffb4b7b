//! Name resolution for the core's [`sip_core::Output::Resolve`] queries.

use sip_core::Resolution;
use std::net::IpAddr;

/// Resolves `host` (A/AAAA through the system resolver) and finds our source address
/// towards the first answer when `need_local` (no public address configured and the
/// socket bound to the unspecified address).
pub async fn resolve(host: String, need_local: Option<IpAddr>) -> Result<Resolution, String> {
    let addrs: Vec<IpAddr> = match driver_net::ip_literal(&host) {
        Some(ip) => vec![ip],
        None => tokio::net::lookup_host((host.as_str(), 5060))
            .await
            .map_err(|e| e.to_string())?
            .map(|sa| sa.ip())
            .collect(),
    };
    Ok(driver_net::resolution(addrs, need_local))
}
