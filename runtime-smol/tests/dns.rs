//! driver-net's resolver on this crate's smol runtime provider
//! (`runtime_smol::dns_runtime`), against driver-net's DNS test server on loopback:
//! the same checks its tests run on tokio's provider, so both drivers get the same
//! answers. The TCP path is exercised by the zone's truncated UDP answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use driver_net::dns::testing::{self, TestServer};
use driver_net::Dns;
use runtime_smol::dns_runtime::SmolRuntime;
use sip_core::{QueryId, QueryKind, Records, ResolveQuery};
use std::net::IpAddr;

#[test]
fn records_ttls_and_negative_answers_from_a_server_of_our_own() {
    let server = TestServer::start().unwrap();
    let dns = Dns::new(Some(server.addr()), SmolRuntime).unwrap();
    smol::block_on(testing::check_answers(&dns));
}

#[test]
fn a_server_that_never_answers_is_an_error_within_seconds() {
    let silent = testing::silent_server().unwrap();
    let addr = silent.local_addr().unwrap();
    let dns = Dns::new(Some(addr), SmolRuntime).unwrap();
    smol::block_on(async {
        testing::check_silent(&dns, addr).await;
        testing::check_literals(&dns).await;
    });
}

#[test]
fn localhost_resolves_to_loopback_with_the_system_configuration() {
    let dns = Dns::new(None, SmolRuntime).unwrap();
    let query = ResolveQuery {
        id: QueryId(1),
        host: "localhost".to_owned(),
        kind: QueryKind::Address,
    };
    let answer = smol::block_on(dns.answer(&query, None)).unwrap();
    let Records::Addresses(res) = answer.records else {
        panic!("addresses asked, {:?} answered", answer.records);
    };
    assert!(!res.addrs.is_empty());
    assert!(res.addrs.iter().all(IpAddr::is_loopback), "{res:?}");
}
