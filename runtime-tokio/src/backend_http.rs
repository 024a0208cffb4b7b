//! Backend requests over HTTP: carries out [`BackendOp`]s with reqwest, using the pure
//! mapping in `sip_core::backend::http`.

use sip_core::backend::http::{http_call, http_reply};
use sip_core::{BackendOp, BackendReply, Secret};
use std::time::Duration;

/// An HTTP client bound to one backend.
#[derive(Clone)]
pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    api_key: Secret,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("base", &self.base)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for the backend: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl HttpBackend {
    /// A client for `base` (no trailing slash), sending `api_key` as `x-api-key`.
    pub fn new(base: &str, api_key: Secret, timeout: Duration) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("trunkline/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    /// Performs one operation; every failure becomes a [`BackendReply`].
    pub async fn perform(&self, op: &BackendOp) -> BackendReply {
        let call = http_call(op);
        let url = format!("{}{}", self.base, call.path);
        let method = match call.method {
            "PATCH" => reqwest::Method::PATCH,
            _ => reqwest::Method::GET,
        };
        let mut req = self
            .client
            .request(method, &url)
            .header("x-api-key", self.api_key.expose())
            .header("accept", "application/json");
        if let Some(body) = call.body {
            req = req.header("content-type", "application/json").body(body);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(body) => http_reply(op, status, &body),
                    Err(e) => BackendReply::Failed(format!(
                        "{} {}: reading the answer failed: {}",
                        call.method,
                        call.path,
                        describe(&e)
                    )),
                }
            }
            Err(e) => {
                BackendReply::Failed(format!("{} {}: {}", call.method, call.path, describe(&e)))
            }
        }
    }
}

/// A short reason, with the chain of causes.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    }
}
