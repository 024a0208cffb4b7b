//! Password rotation against a real Kamailio registrar and a real HTTP backend, in both
//! orders an operator meets: the provider first, or the backend first. Either way the
//! registrar ends with exactly one binding for the account, the one trunkline refreshes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;
use trunkline_tests::{net, Backend, Kamailio, Provider, RecordedRequest, Trunkline};

const ID: &str = "p-rot";

struct Setup {
    kamailio: Kamailio,
    backend: Backend,
    trunkline: Trunkline,
    admin: String,
    http: reqwest::Client,
}

async fn start(user: &str) -> Setup {
    let kamailio = Kamailio::start().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    backend.set_providers(&[Provider::udp(
        ID,
        user,
        &kamailio.password(user),
        kamailio.addr(),
    )]);
    let admin_port = net::free_tcp_port();
    let mut trunkline = Trunkline::start(
        &["run"],
        &[
            ("BACKEND_URL", backend.url()),
            ("API_KEY", api_key),
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PORT", net::free_udp_port().to_string()),
            ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "debug".to_owned()),
        ],
    )
    .await;
    trunkline
        .run_until(backend.wait_for_status(ID, "registered"))
        .await;
    Setup {
        kamailio,
        backend,
        trunkline,
        admin: format!("http://127.0.0.1:{admin_port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    }
}

impl Setup {
    /// The backend now holds `password` for the account; trunkline is told to resync.
    async fn backend_rotates(&mut self, user: &str, password: &str) {
        self.backend
            .set_providers(&[Provider::udp(ID, user, password, self.kamailio.addr())]);
        self.post("/api/sync").await;
    }

    /// An admin `POST` that must be accepted (202).
    async fn post(&self, path: &str) {
        let r = self
            .http
            .post(format!("{}{path}", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "POST {path}");
    }

    /// Waits for more accepted PATCHes with `status` than `before`.
    async fn wait_for_new_status(&mut self, status: &str, before: usize) -> RecordedRequest {
        let what = format!("a new {status:?} PATCH for {ID}");
        let status = status.to_owned();
        self.trunkline
            .run_until(self.backend.wait_for(&what, move |h| {
                let matching: Vec<_> = h
                    .iter()
                    .filter(|r| r.is_accepted_patch_for(ID) && r.register_status() == Some(&status))
                    .collect();
                (matching.len() > before).then(|| matching[matching.len() - 1].clone())
            }))
            .await
    }

    fn statuses(&self, status: &str) -> usize {
        self.backend
            .patches_for(ID)
            .iter()
            .filter(|r| r.fault.is_none() && r.register_status() == Some(status))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_at_the_registrar_first_leaves_one_binding() {
    let user = "rot-first";
    let mut s = start(user).await;
    let before = s.kamailio.bindings_of(user).await;
    assert_eq!(before.len(), 1);
    let new_password = format!("rotated-{}", trunkline_tests::random_hex(8));
    s.kamailio.set_password(user, &new_password).await;
    let registered = s.statuses("registered");
    s.backend_rotates(user, &new_password).await;
    s.wait_for_new_status("registered", registered).await;
    let after = s.kamailio.bindings_of(user).await;
    assert_eq!(after.len(), 1, "exactly one binding: {after:?}");
    assert_eq!(
        after[0].call_id, before[0].call_id,
        "the same binding, refreshed"
    );
    assert!(after[0].cseq > before[0].cseq);
    assert_eq!(s.statuses("failed"), 0, "nothing failed on the way");
    let exited = s.trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0));
    exited.assert_no_secret(&[("the new password", &new_password)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_at_the_backend_first_leaves_one_binding() {
    let user = "rot-backend";
    let mut s = start(user).await;
    let before = s.kamailio.bindings_of(user).await;
    assert_eq!(before.len(), 1);
    let new_password = format!("rotated-{}", trunkline_tests::random_hex(8));
    // The backend has the new password before the provider does: refused, truthfully.
    s.backend_rotates(user, &new_password).await;
    let failed = s.wait_for_new_status("failed", 0).await;
    assert!(
        failed
            .register_error()
            .unwrap_or_default()
            .starts_with("authentication rejected"),
        "{:?}",
        failed.register_error()
    );
    // The binding made with the old password is neither removed nor duplicated.
    assert_eq!(s.kamailio.bindings_of(user).await.len(), 1);
    // The provider catches up; an operator re-registers rather than wait out the
    // slow retry of a rejection.
    s.kamailio.set_password(user, &new_password).await;
    let registered = s.statuses("registered");
    s.post(&format!("/api/registrations/{ID}/register")).await;
    s.wait_for_new_status("registered", registered).await;
    let after = s.kamailio.bindings_of(user).await;
    assert_eq!(after.len(), 1, "exactly one binding: {after:?}");
    assert_eq!(
        after[0].call_id, before[0].call_id,
        "the same binding, refreshed"
    );
    let exited = s.trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0));
    exited.assert_no_secret(&[("the new password", &new_password)]);
}
