//! Named scenarios, their traces pinned with insta. Each also passes every safety and
//! liveness check strictly (no known issue tolerated).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::snapshot;
use simulator::models::backend::BackendMode;
use simulator::models::digest::Algorithm;
use simulator::models::registrar::{Mode, RegistrarConfig};
use simulator::net::LinkConfig;
use simulator::scenario::{Fault, ProviderChange, SimCommand};
use simulator::Scenario;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One registrar on a fixed 10 ms link, one provider asking for `expires`, the backend
/// 5 ms away, no periodic sync; heal at once and converge for `converge`.
fn world(name: &str, config: RegistrarConfig, expires: i64, converge: u64) -> Scenario {
    let mut s = Scenario::new(name, 1);
    let r = s.add_registrar(config, LinkConfig::fixed(Duration::from_millis(10)));
    let p = s.add_provider(r);
    s.providers[p].expires = Some(expires);
    s.backend_link = LinkConfig::fixed(Duration::from_millis(5));
    s.core.sync_interval = None;
    s.heal_at = secs(1);
    s.converge_for = Some(secs(converge));
    s
}

#[test]
fn register_basic() {
    // Grant 120 s: the refresh reuses the cached challenge (nc=2) well before expiry.
    let config = RegistrarConfig {
        max_expires: 120,
        ..RegistrarConfig::default()
    };
    snapshot("register_basic", world("register_basic", config, 3600, 150));
}

#[test]
fn register_401_sha256() {
    // RFC 8760: a SHA-256 challenge first, an MD5 one second; SHA-256 must be chosen.
    let config = RegistrarConfig {
        algorithm: Algorithm::Sha256,
        also_md5: true,
        ..RegistrarConfig::default()
    };
    snapshot(
        "register_401_sha256",
        world("register_401_sha256", config, 3600, 30),
    );
}

#[test]
fn stale_nonce() {
    // Nonces live 60 s; the second refresh (near 115 s) meets `stale=true` and answers again.
    let config = RegistrarConfig {
        max_expires: 120,
        nonce_ttl: Some(secs(60)),
        qop: false,
        ..RegistrarConfig::default()
    };
    snapshot("stale_nonce", world("stale_nonce", config, 120, 130));
}

#[test]
fn register_423() {
    let config = RegistrarConfig {
        min_expires: Some(600),
        ..RegistrarConfig::default()
    };
    snapshot("register_423", world("register_423", config, 300, 30));
}

#[test]
fn registrar_restart() {
    // The restart forgets binding and nonce; the refresh is challenged and re-answered.
    let config = RegistrarConfig {
        max_expires: 120,
        ..RegistrarConfig::default()
    };
    let mut s = world("registrar_restart", config, 120, 150);
    s.heal_at = secs(60);
    s.at(secs(30), Fault::RestartRegistrar { registrar: 0 });
    snapshot("registrar_restart", s);
}

#[test]
fn backend_outage_and_recovery() {
    // The backend goes down; meanwhile the registration fails (503, Retry-After 20) and
    // recovers. Reports retry with backoff, and the backend ends with the latest only.
    let mut s = world("backend_outage", RegistrarConfig::default(), 3600, 120);
    s.heal_at = secs(90);
    s.at(secs(10), Fault::Backend(BackendMode::Down));
    s.at(
        secs(11),
        Fault::Registrar {
            registrar: 0,
            mode: Mode::Reject {
                status: 503,
                retry_after: Some(20),
            },
        },
    );
    s.at(
        secs(12),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    s.at(
        secs(25),
        Fault::Registrar {
            registrar: 0,
            mode: Mode::Normal,
        },
    );
    s.at(secs(70), Fault::Backend(BackendMode::Up));
    snapshot("backend_outage_and_recovery", s);
}

#[test]
fn provider_removed_by_resync() {
    let mut s = world("provider_removed", RegistrarConfig::default(), 3600, 30);
    let r = 0;
    s.add_provider(r);
    s.heal_at = secs(40);
    s.at(
        secs(20),
        Fault::Provider {
            provider: 1,
            change: ProviderChange::Remove,
        },
    );
    s.at(secs(21), Fault::Command(SimCommand::Resync));
    snapshot("provider_removed_by_resync", s);
}

#[test]
fn graceful_shutdown() {
    let mut s = world("graceful_shutdown", RegistrarConfig::default(), 3600, 20);
    s.add_provider(0);
    s.shutdown_grace = Some(secs(10));
    snapshot("graceful_shutdown", s);
}
