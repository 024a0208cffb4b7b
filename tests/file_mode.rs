//! End to end: file mode's sync. `POST /api/sync` re-reads the config file's
//! `[[providers]]` and applies the difference against a real Kamailio; a broken file
//! keeps the running set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use trunkline_tests::{net, Kamailio, Trunkline};

fn write_config(path: &Path, kamailio: &Kamailio, sip_port: u16, users: &[&str]) {
    let mut text = format!("[sip]\nport = {sip_port}\n\n");
    for user in users {
        text.push_str(&format!(
            "[[providers]]\nid = \"p-{user}\"\nname = \"{user}\"\nhost = \"127.0.0.1\"\n\
             port = {}\nusername = \"{user}\"\npassword = \"{}\"\n\n",
            kamailio.port(),
            kamailio.password(user)
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn registered(lines: &[Value], id: &str) -> bool {
    lines
        .iter()
        .any(|l| l["provider_id"] == id && l["status"] == "registered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_rereads_the_providers_of_the_config_file() {
    let kamailio = Kamailio::start().await;
    let workdir = tempfile::tempdir().unwrap();
    let config = workdir.path().join("trunkline.toml");
    let sip_port = net::free_udp_port();
    write_config(&config, &kamailio, sip_port, &["fay"]);
    let admin_port = net::free_tcp_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut t = Trunkline::start_in(
        workdir.path(),
        &["run", "--config", config.to_str().unwrap()],
        &[
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "debug".to_owned()),
        ],
    )
    .await;
    t.wait_for_log("p-fay registered", |l| registered(l, "p-fay"))
        .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // fay leaves the file, gus joins: a sync applies both.
    write_config(&config, &kamailio, sip_port, &["gus"]);
    let r = http.post(format!("{admin}/api/sync")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    t.wait_for_log("p-gus registered and p-fay removed", |l| {
        registered(l, "p-gus")
            && l.iter().any(|l| {
                l["provider_id"] == "p-fay"
                    && l["msg"]
                        .as_str()
                        .is_some_and(|m| m.contains("removed from the list"))
            })
    })
    .await;
    assert_eq!(kamailio.bindings_of("gus").await.len(), 1);
    // fay's binding goes with her un-REGISTER (bounded poll: Kamailio has no event to
    // await).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !kamailio.bindings_of("fay").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fay's binding was not removed after the sync"
        );
        t.run_until(tokio::time::sleep(Duration::from_millis(100)))
            .await;
    }

    // A broken file: the sync fails with the file's error and gus stays registered.
    std::fs::write(
        &config,
        "[[providers]]\nid = \"p-x\"\nport = \"not a port\n",
    )
    .unwrap();
    let r = http.post(format!("{admin}/api/sync")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    t.wait_for_log("the failed re-read", |l| {
        l.iter().any(|l| {
            l["level"] == "warn"
                && l["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("re-reading the config file"))
        })
    })
    .await;
    let regs: Value = http
        .get(format!("{admin}/api/registrations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(regs.as_array().unwrap().len(), 1, "{regs}");
    assert_eq!(regs[0]["id"], "p-gus");
    assert_eq!(regs[0]["status"], "registered");
    assert_eq!(kamailio.bindings_of("gus").await.len(), 1);

    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
    exited.assert_no_secret(&[
        ("fay's password", kamailio.password("fay").as_str()),
        ("gus's password", kamailio.password("gus").as_str()),
    ]);
}
