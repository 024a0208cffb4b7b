//! The backend API over HTTP/1.1 with hyper's runtime-agnostic client on smol sockets.
//!
//! reqwest cannot run here: it needs a tokio reactor (seanmonstar/reqwest #1944), and
//! hiding one behind `async-compat` would weaken the point of this crate. The mapping
//! of operations to requests and of answers to replies is the shared, pure
//! [`sip_core::backend::http`]; this module only moves bytes.

use crate::backend::Backend;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request};
use sip_core::backend::http::{http_call, http_reply};
use sip_core::{BackendOp, BackendReply, Secret};
use smol_hyper::rt::FuturesIo;
use std::future::Future;
use std::time::Duration;

/// The largest answer read: a provider list of 100 000 entries is about 30 MB.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why an [`HttpBackend`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpBackendError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("backend URL {0:?} is not http://host[:port][/path]")]
    InvalidUrl(String),
    /// `https://` needs TLS, which this driver does not carry (the tokio driver does).
    #[error("backend URL {0:?} uses https, which the smol driver does not support; use http on a trusted network or the tokio driver")]
    Https(String),
    /// The API key cannot be sent as a header value (control characters).
    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    InvalidApiKey,
}

/// An HTTP client bound to one backend, sending the API key as `x-api-key`.
#[derive(Clone)]
pub struct HttpBackend {
    /// `host:port` to connect to, also sent as `Host`.
    authority: String,
    /// Path prefix without trailing slash (`""` or `/prefix`).
    prefix: String,
    api_key: HeaderValue,
    timeout: Duration,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("authority", &self.authority)
            .field("prefix", &self.prefix)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpBackend {
    /// A client for `base` (`http://host[:port][/prefix]`) whose requests give up after
    /// `timeout` (a safety net: the core owns the real deadline).
    pub fn new(base: &str, api_key: Secret, timeout: Duration) -> Result<Self, HttpBackendError> {
        let bad = || HttpBackendError::InvalidUrl(base.to_owned());
        if base
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(HttpBackendError::Https(base.to_owned()));
        }
        let rest = base
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .and_then(|_| base.get(7..))
            .ok_or_else(bad)?;
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty()
            || authority.contains(['@', '?', '#', ' '])
            || prefix.contains(['?', '#'])
        {
            return Err(bad());
        }
        let authority = if has_port(authority) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let mut api_key =
            HeaderValue::from_str(api_key.expose()).map_err(|_| HttpBackendError::InvalidApiKey)?;
        // Keeps the key out of hyper's own debug output.
        api_key.set_sensitive(true);
        Ok(Self {
            authority,
            prefix: prefix.trim_end_matches('/').to_owned(),
            api_key,
            timeout,
        })
    }

    /// Performs one operation; every failure becomes [`BackendReply::Failed`].
    pub async fn perform(&self, op: &BackendOp) -> BackendReply {
        let call = http_call(op);
        let what = format!("{} {}", call.method, call.path);
        let exchange = self.exchange(call.method, &call.path, call.body);
        let timed_out = async {
            smol::Timer::after(self.timeout).await;
            Err("timed out".to_owned())
        };
        match smol::future::or(exchange, timed_out).await {
            Ok((status, body)) => http_reply(op, status, &body),
            Err(e) => BackendReply::Failed(format!("{what}: {e}")),
        }
    }

    /// One request on a fresh connection: the backend is called rarely (a sync every
    /// few minutes, a report per status change), so pooling is not worth its states.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), String> {
        let stream = smol::net::TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| format!("connection failed: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(FuturesIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        // The connection task ends when the exchange is done and `sender` is dropped.
        smol::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "backend connection ended with an error");
            }
        })
        .detach();
        let method = if method == "PATCH" {
            Method::PATCH
        } else {
            Method::GET
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(HOST, self.authority.as_str())
            .header("x-api-key", self.api_key.clone())
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("trunkline-smol/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// Whether `authority` ends in `:port` (an IPv6 literal's colons are inside `[]`).
fn has_port(authority: &str) -> bool {
    authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (!host.starts_with('[') || host.ends_with(']'))
    })
}

impl Backend for HttpBackend {
    fn perform(&self, op: BackendOp) -> impl Future<Output = BackendReply> + Send {
        let this = self.clone();
        async move { HttpBackend::perform(&this, &op).await }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let b =
            HttpBackend::new("http://127.0.0.1:8080/", "k".into(), Duration::from_secs(1)).unwrap();
        assert_eq!(
            (b.authority.as_str(), b.prefix.as_str()),
            ("127.0.0.1:8080", "")
        );
        let b = HttpBackend::new(
            "HTTP://backend.test/api/v1/",
            "k".into(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            (b.authority.as_str(), b.prefix.as_str()),
            ("backend.test:80", "/api/v1")
        );
        let b = HttpBackend::new("http://[::1]", "k".into(), Duration::from_secs(1)).unwrap();
        assert_eq!(b.authority, "[::1]:80");
        assert!(matches!(
            HttpBackend::new("https://x", "k".into(), Duration::from_secs(1)),
            Err(HttpBackendError::Https(_))
        ));
        for bad in ["ftp://x", "http://", "x", "http://u@h/", "http://h/?q"] {
            assert!(
                matches!(
                    HttpBackend::new(bad, "k".into(), Duration::from_secs(1)),
                    Err(HttpBackendError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            HttpBackend::new("http://h", "a\nb".into(), Duration::from_secs(1)).unwrap_err(),
            HttpBackendError::InvalidApiKey
        );
        let debug = format!(
            "{:?}",
            HttpBackend::new("http://h", "sekret".into(), Duration::from_secs(1)).unwrap()
        );
        assert!(!debug.contains("sekret"), "{debug}");
    }

    #[test]
    fn nobody_listening_is_a_failed_reply_not_an_error() {
        // Bind then drop: the port is closed, so the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let b = HttpBackend::new(
            &format!("http://127.0.0.1:{port}"),
            "k".into(),
            Duration::from_secs(5),
        )
        .unwrap();
        let reply = smol::block_on(HttpBackend::perform(&b, &BackendOp::FetchProviders));
        let BackendReply::Failed(e) = reply else {
            panic!("expected a failure, got {reply:?}");
        };
        assert!(e.starts_with("GET /api/sip/provider-registration: "), "{e}");
    }
}
