//! The resolver on tokio's runtime provider against the test zone of [`testing`];
//! runtime-smol runs the same checks on its own provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::testing::{self, TestServer};
use super::Dns;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use sip_core::{QueryId, QueryKind, Records, ResolveQuery};
use std::net::IpAddr;

#[tokio::test]
async fn records_ttls_and_negative_answers_from_a_server_of_our_own() {
    let server = TestServer::start().unwrap();
    let dns = Dns::new(Some(server.addr()), TokioRuntimeProvider::default()).unwrap();
    assert_eq!(dns.servers(), format!("DNS server {}", server.addr()));
    testing::check_answers(&dns).await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_error_within_seconds() {
    let silent = testing::silent_server().unwrap();
    let addr = silent.local_addr().unwrap();
    let dns = Dns::new(Some(addr), TokioRuntimeProvider::default()).unwrap();
    testing::check_silent(&dns, addr).await;
    testing::check_literals(&dns).await;
}

#[tokio::test]
async fn the_system_configuration_finds_localhost_in_etc_hosts() {
    let dns = Dns::new(None, TokioRuntimeProvider::default()).unwrap();
    let query = ResolveQuery {
        id: QueryId(7),
        host: "localhost".to_owned(),
        kind: QueryKind::Address,
    };
    let answer = dns.answer(&query, None).await.unwrap();
    // From /etc/hosts (or hickory's own localhost zone): no TTL either way worth using.
    let Records::Addresses(res) = answer.records else {
        panic!("addresses asked, {:?} answered", answer.records);
    };
    assert!(!res.addrs.is_empty());
    assert!(res.addrs.iter().all(IpAddr::is_loopback), "{res:?}");
}

#[test]
fn names_lose_the_trailing_dot_but_the_root_stays() {
    use hickory_resolver::proto::rr::Name;
    let name = |s| Name::from_ascii(s).unwrap();
    assert_eq!(super::plain(&name("sip.example.com.")), "sip.example.com");
    assert_eq!(super::plain(&name("sip.example.com")), "sip.example.com");
    assert_eq!(super::plain(&Name::root()), ".");
    assert!(super::parse_name("bad..name").is_err());
}
