//! Call routing (CONTRACT.md §3): `GET /api/sip/config` and `GET /api/sip/destination/{did}`
//! through the controller, in virtual time against a scripted backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{stats::Stats, Command, Config, Event, Input, NoRoute, Output, Route, RouteSource};
use std::collections::BTreeMap;
use std::time::Duration;
use support::registrar::{Behaviour, Registrar};
use support::{config, BackendMode, World};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn backend_mode(domain: Option<&str>) -> Config {
    Config {
        routes_from_backend: true,
        default_domain: domain.map(str::to_owned),
        ..config()
    }
}

/// A world with no providers whose backend serves `livekit` and `routes`.
fn world(cfg: Config, livekit: Option<&str>, routes: &[(&str, &str)]) -> World {
    let reg = Registrar::new(&[], Behaviour::default());
    let mut w = World::new_with_backend(cfg, reg, Vec::new(), Vec::new(), |w| {
        w.livekit_domain = livekit.map(str::to_owned);
        w.routes = routes
            .iter()
            .map(|(d, u)| ((*d).to_owned(), (*u).to_owned()))
            .collect();
    });
    w.run_for(MS(100));
    w
}

fn lookup(w: &mut World, did: &str, ticket: u64) {
    w.input(Input::Command(Command::LookupDestination {
        did: did.to_owned(),
        ticket,
    }));
}

fn route(uri: &str, source: RouteSource, cached: bool) -> Result<Route, NoRoute> {
    Ok(Route {
        uri: uri.to_owned(),
        source,
        cached,
    })
}

fn lookups_counted(stats: &Stats, label: &str) -> u64 {
    stats
        .backend_requests
        .get(&("lookup_destination", label))
        .copied()
        .unwrap_or(0)
}

#[test]
fn backend_domain_replaces_the_configured_default_and_404_takes_it() {
    let mut w = world(
        backend_mode(Some("configured.example")),
        Some("proj.sip.livekit.cloud"),
        &[],
    );
    assert_eq!(w.config_fetches, 1, "config is fetched with the first sync");
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        Event::DefaultDomainChanged { domain } if domain == "proj.sip.livekit.cloud"
    )));
    assert_eq!(w.core.default_domain(), Some("proj.sip.livekit.cloud"));

    lookup(&mut w, "+5511999990000", 1);
    w.run_for(MS(100));
    assert_eq!(
        w.destination(1),
        Some(&route(
            "sip:+5511999990000@proj.sip.livekit.cloud",
            RouteSource::Default,
            false
        ))
    );
    // The 404 is cached: the next call to the DID asks nobody.
    lookup(&mut w, "+5511999990000", 2);
    assert_eq!(
        w.destination(2),
        Some(&route(
            "sip:+5511999990000@proj.sip.livekit.cloud",
            RouteSource::Default,
            true
        ))
    );
    assert_eq!(w.lookups, 1);
    assert_eq!(lookups_counted(w.core.stats(), "not_found"), 1);
}

#[test]
fn backend_routes_are_used_cached_and_asked_again_after_expiry() {
    let mut w = world(
        backend_mode(Some("lk.example")),
        None,
        &[("+1555", "sip:+1555@other.example;transport=tcp")],
    );
    // The config endpoint answered 404: optional, the configured default stays.
    assert_eq!(w.core.default_domain(), Some("lk.example"));
    assert!(!w
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::DefaultDomainChanged { .. })));

    lookup(&mut w, "+1555", 1);
    // Two more calls arrive while the first lookup is in flight: one request serves all.
    lookup(&mut w, "+1555", 2);
    lookup(&mut w, "+1555", 3);
    w.run_for(MS(100));
    let fresh = route(
        "sip:+1555@other.example;transport=tcp",
        RouteSource::Backend,
        false,
    );
    for t in 1..=3 {
        assert_eq!(w.destination(t), Some(&fresh), "ticket {t}");
    }
    assert_eq!(w.lookups, 1);

    lookup(&mut w, "+1555", 4);
    assert_eq!(
        w.destination(4),
        Some(&route(
            "sip:+1555@other.example;transport=tcp",
            RouteSource::Backend,
            true
        ))
    );
    w.run_for(sip_core::backend::destination::CACHE_FOR);
    lookup(&mut w, "+1555", 5);
    w.run_for(MS(100));
    assert_eq!(w.destination(5), Some(&fresh));
    assert_eq!(w.lookups, 2, "an expired answer is asked again");
}

#[test]
fn a_silent_backend_holds_a_call_no_longer_than_the_lookup_timeout() {
    let cfg = Config {
        route_lookup_timeout: MS(1500),
        ..backend_mode(Some("lk.example"))
    };
    let mut w = world(cfg, None, &[]);
    w.backend = BackendMode::Silent;
    let asked_at = w.elapsed();
    lookup(&mut w, "+1", 7);
    w.run_for(MS(1499));
    assert_eq!(w.destination(7), None, "still waiting for the backend");
    w.run_for(MS(1));
    assert_eq!(
        w.destination(7),
        Some(&route("sip:+1@lk.example", RouteSource::Fallback, false))
    );
    let answered_at = w
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::DestinationFound { ticket: 7, .. }))
        .map(|(t, _)| *t)
        .unwrap();
    assert_eq!(answered_at - asked_at, MS(1500));
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        Event::DestinationFallback { did, reason } if did == "+1" && reason.contains("1.5s")
    )));
}

#[test]
fn failures_and_unusable_answers_fall_back_without_caching() {
    let mut w = world(
        backend_mode(Some("lk.example")),
        None,
        &[("+2", "sip:+2@x.example\r\nX-Injected: 1")],
    );
    w.backend = BackendMode::Down;
    lookup(&mut w, "+1", 1);
    w.run_for(MS(100));
    assert_eq!(
        w.destination(1),
        Some(&route("sip:+1@lk.example", RouteSource::Fallback, false))
    );
    w.backend = BackendMode::Up;
    lookup(&mut w, "+1", 2);
    w.run_for(MS(100));
    // Not cached: the backend was asked again, answered 404 this time.
    assert_eq!(
        w.destination(2),
        Some(&route("sip:+1@lk.example", RouteSource::Default, false))
    );

    lookup(&mut w, "+2", 3);
    w.run_for(MS(100));
    assert_eq!(
        w.destination(3),
        Some(&route("sip:+2@lk.example", RouteSource::Fallback, false)),
        "a destination that would inject a header is not used"
    );
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        Event::DestinationFallback { did, reason } if did == "+2" && reason.contains("not a usable")
    )));
}

#[test]
fn no_default_and_bad_dids_are_clear_errors() {
    let mut w = world(backend_mode(None), None, &[]);
    lookup(&mut w, "+1", 1);
    w.run_for(MS(100));
    let Some(Err(e)) = w.destination(1) else {
        panic!("{:?}", w.destination(1));
    };
    assert!(e.to_string().contains("LIVEKIT_SIP_DOMAIN"), "{e}");

    let before = w.lookups;
    lookup(&mut w, "1@evil.example", 2);
    assert!(matches!(
        w.destination(2),
        Some(Err(NoRoute::BadDid { .. }))
    ));
    assert_eq!(
        w.lookups, before,
        "an undialable DID never reaches the backend"
    );
}

#[test]
fn a_failed_config_fetch_is_retried_with_backoff() {
    let cfg = backend_mode(None);
    let reg = Registrar::new(&[], Behaviour::default());
    let mut w = World::new_with_backend(cfg, reg, Vec::new(), Vec::new(), |w| {
        w.backend = BackendMode::Down;
        w.livekit_domain = Some("late.example".into());
    });
    w.run_for(MS(500));
    assert_eq!(w.core.default_domain(), None);
    w.backend = BackendMode::Up;
    // The provider fetch and the config fetch each retry on their own backoff.
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.core.default_domain(), Some("late.example"));
    assert_eq!(w.config_fetches, 1);
}

#[test]
fn file_mode_routes_without_asking() {
    let mut fixed = BTreeMap::new();
    fixed.insert("+9".to_owned(), "sip:+9@fixed.example".to_owned());
    let cfg = Config {
        default_domain: Some("lk.example".into()),
        fixed_routes: fixed,
        ..config()
    };
    let mut w = world(cfg, Some("ignored.example"), &[]);
    assert_eq!(w.config_fetches, 0);
    lookup(&mut w, "+9", 1);
    lookup(&mut w, "+8", 2);
    assert_eq!(
        w.destination(1),
        Some(&route("sip:+9@fixed.example", RouteSource::Fixed, false))
    );
    assert_eq!(
        w.destination(2),
        Some(&route("sip:+8@lk.example", RouteSource::Default, false))
    );
    assert_eq!(w.lookups, 0);
    assert!(!w
        .core
        .stats()
        .backend_requests
        .keys()
        .any(|(op, _)| *op != "fetch_providers"));
    let outputs_left = w.core.poll_output();
    assert!(matches!(outputs_left, Output::Timeout(_)));
}

#[test]
fn a_shutdown_answers_lookups_at_once_instead_of_waiting_for_the_backend() {
    let mut w = world(backend_mode(Some("lk.example")), None, &[]);
    w.backend = BackendMode::Silent;
    lookup(&mut w, "+1", 1);
    assert_eq!(w.destination(1), None);
    w.input(Input::Command(Command::Shutdown {
        grace: Duration::from_secs(5),
    }));
    // Answered by the shutdown itself, and the lookup does not hold up its end.
    assert_eq!(
        w.destination(1),
        Some(&route("sip:+1@lk.example", RouteSource::Fallback, false))
    );
    assert!(w.shutdown_complete(), "{:?}", w.events);
    let before = w.lookups;
    lookup(&mut w, "+2", 2);
    assert_eq!(w.lookups, before);
}

#[test]
fn a_rejected_api_key_on_a_lookup_says_why_the_default_was_taken() {
    let mut w = world(backend_mode(Some("lk.example")), None, &[]);
    w.backend = BackendMode::Unauthorized;
    lookup(&mut w, "+3", 3);
    w.run_for(MS(100));
    assert_eq!(
        w.destination(3),
        Some(&route("sip:+3@lk.example", RouteSource::Fallback, false))
    );
    assert!(w
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::ApiKeyRejected { status: 401 })));
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        Event::DestinationFallback { did, reason } if did == "+3" && reason.contains("API key")
    )));
}

#[test]
fn a_failed_config_fetch_is_announced() {
    let cfg = backend_mode(None);
    let reg = Registrar::new(&[], Behaviour::default());
    let mut w = World::new_with_backend(cfg, reg, Vec::new(), Vec::new(), |w| {
        w.backend = BackendMode::Down;
    });
    w.run_for(MS(100));
    assert!(w.events.iter().any(|(_, e)| matches!(
        e,
        Event::ConfigFetchFailed { error, .. } if error.contains("connection refused")
    )));
}

#[test]
fn a_late_answer_still_fills_the_cache_for_the_next_calls() {
    // A backend always a little slower than the lookup timeout: the first call takes the
    // default, the late answer is cached, and the calls after it get the backend's route
    // at once instead of each waiting the whole timeout.
    let cfg = Config {
        route_lookup_timeout: MS(1000),
        ..backend_mode(Some("lk.example"))
    };
    let mut w = world(cfg, None, &[("+7", "sip:+7@agent.example")]);
    w.backend_delay = MS(1500);
    lookup(&mut w, "+7", 1);
    w.run_for(MS(1200));
    // A call arriving after the first caller gave up joins the request in flight.
    lookup(&mut w, "+7", 2);
    assert_eq!(
        w.destination(1),
        Some(&route("sip:+7@lk.example", RouteSource::Fallback, false))
    );
    assert_eq!(w.destination(2), None);
    w.run_for(MS(400));
    assert_eq!(
        w.destination(2),
        Some(&route("sip:+7@agent.example", RouteSource::Backend, false)),
        "the late answer reaches the caller that joined"
    );
    lookup(&mut w, "+7", 3);
    assert_eq!(
        w.destination(3),
        Some(&route("sip:+7@agent.example", RouteSource::Backend, true))
    );
    assert_eq!(w.lookups, 1);
    // Only the caller that took the default is worth a warning.
    let warnings = w
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::DestinationFallback { .. }))
        .count();
    assert_eq!(warnings, 1);
}
