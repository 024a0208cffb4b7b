//! `trunkline status`: asks a running trunkline's admin API for its registrations and
//! prints them as a table (CONTRACT.md §1).

mod table;

use crate::admin::view::{CallJson, RegistrationJson};
use crate::config::Settings;
use std::time::Duration;
use url::Url;

/// How long `status` waits for an answer: the admin API answers from memory, so a
/// trunkline that takes longer than this is as good as absent for an operator.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why `trunkline status` printed no table. Every one exits 1.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// `--admin` is not an http(s) URL.
    #[error(
        "--admin {given:?} is not a usable URL: {reason} (expected e.g. http://127.0.0.1:8080)"
    )]
    BadUrl {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing answered: not running, wrong address, or too slow.
    #[error(
        "no trunkline answered at {url}: {reason} (is it running? check ADMIN_LISTEN / --admin)"
    )]
    Unreachable {
        /// The admin API's base URL (credentials removed).
        url: String,
        /// Why, e.g. "connection refused".
        reason: String,
    },
    /// Something answered with an error status.
    #[error("trunkline at {url} answered HTTP {status}: {message}{hint}")]
    Refused {
        /// The admin API's base URL (credentials removed).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The `error` of the JSON body, or the status's reason.
        message: String,
        /// What to do about it, when known.
        hint: &'static str,
    },
    /// Something answered, but not with a registration list.
    #[error("{url} answered, but not with trunkline's registration list ({reason}); does --admin point at trunkline's admin API?")]
    NotTrunkline {
        /// The admin API's base URL (credentials removed).
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// `admin.listen` has port 0, so the running trunkline's port cannot be known here.
    #[error("admin.listen ({listen}) has port 0, so trunkline took any free port and `status` cannot guess it; pass --admin with the address in the `admin` field of trunkline's \"trunkline started\" log line")]
    AnyPort {
        /// The configured `admin.listen`.
        listen: std::net::SocketAddr,
    },
    /// The HTTP client or the runtime could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// Runs `trunkline status` and returns the table to print.
pub fn run(settings: &Settings, admin: Option<&str>, wide: bool) -> Result<String, StatusError> {
    let base = match admin {
        Some(given) => parse_base(given)?,
        None if settings.admin.listen.port() == 0 => {
            return Err(StatusError::AnyPort {
                listen: settings.admin.listen,
            })
        }
        None => parse_base(&settings.admin.local_url())?,
    };
    let token = settings.admin.token.as_ref().map(|t| t.expose().to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StatusError::Setup(e.to_string()))?;
    let rows: Vec<RegistrationJson> =
        rt.block_on(fetch(&base, "api/registrations", token.as_deref()))?;
    let mut out = table::render(&rows, time::OffsetDateTime::now_utc(), wide);
    // A trunkline from before calls has no /api/calls: its table stands alone.
    let calls: Result<Vec<CallJson>, _> = rt.block_on(fetch(&base, "api/calls", token.as_deref()));
    if let Ok(calls) = calls {
        out.push_str(&table::calls_line(&calls));
    }
    Ok(out)
}

/// The admin API's base URL from `--admin` (or `admin.listen`); `http://` is assumed
/// when no scheme is given, as operators type `127.0.0.1:8080`.
fn parse_base(given: &str) -> Result<Url, StatusError> {
    let bad = |reason: String| StatusError::BadUrl {
        given: given.to_owned(),
        reason,
    };
    let text = given.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(bad("no host".to_owned()));
    }
    // A base with a path prefix (behind a reverse proxy) keeps it: `join` must append.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `url` without user name or password, for messages.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.as_str().trim_end_matches('/').to_owned()
}

async fn fetch<T: serde::de::DeserializeOwned>(
    base: &Url,
    path: &str,
    token: Option<&str>,
) -> Result<T, StatusError> {
    let shown_base = shown(base);
    let endpoint = base.join(path).map_err(|e| StatusError::BadUrl {
        given: shown_base.clone(),
        reason: e.to_string(),
    })?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
        .map_err(|e| StatusError::Setup(cause(&e)))?;
    let mut request = client
        .get(endpoint)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = token {
        // GETs are open, but a reverse proxy in front may want the token too.
        request = request.bearer_auth(token);
    }
    let unreachable = |e: reqwest::Error| StatusError::Unreachable {
        url: shown_base.clone(),
        reason: if e.is_timeout() {
            format!("no answer within {TIMEOUT:?}")
        } else {
            cause(&e)
        },
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        return Err(StatusError::Refused {
            url: shown_base,
            status: status.as_u16(),
            message: error_message(&body)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            hint: match status.as_u16() {
                401 | 403 => " (set ADMIN_TOKEN to the token trunkline was started with)",
                404 => " (is this trunkline's admin API, and a version that serves /api/registrations?)",
                503 => " (trunkline is shutting down or overloaded; try again)",
                _ => "",
            },
        });
    }
    serde_json::from_slice(&body).map_err(|e| StatusError::NotTrunkline {
        url: shown_base,
        reason: e.to_string(),
    })
}

/// The `error` field of a JSON error body, cut to one readable line.
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value.get("error")?.as_str()?;
    Some(text.chars().take(300).collect())
}

/// The innermost cause of a client error: reqwest's own message ("error sending
/// request") says less than the OS's ("Connection refused").
fn cause(e: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        let ok = [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/api/registrations",
            ),
            (
                "http://127.0.0.1:8080/",
                "http://127.0.0.1:8080/api/registrations",
            ),
            ("127.0.0.1:9000", "http://127.0.0.1:9000/api/registrations"),
            (
                "https://proxy.example/trunkline",
                "https://proxy.example/trunkline/api/registrations",
            ),
            ("http://[::1]:8080", "http://[::1]:8080/api/registrations"),
        ];
        for (given, want) in ok {
            let base = parse_base(given).unwrap();
            assert_eq!(base.join("api/registrations").unwrap().as_str(), want);
        }
    }

    #[test]
    fn unusable_urls_say_what_is_expected() {
        for given in ["ftp://127.0.0.1:21", "http://", "http://exa mple:80"] {
            let e = parse_base(given).unwrap_err().to_string();
            assert!(
                e.contains("--admin") && e.contains("http://127.0.0.1:8080"),
                "{e}"
            );
        }
    }

    #[test]
    fn credentials_in_the_url_are_not_shown() {
        let base = parse_base("http://user:pa55word@127.0.0.1:8080").unwrap();
        assert_eq!(shown(&base), "http://127.0.0.1:8080");
    }

    #[test]
    fn nothing_listening_is_unreachable_with_the_hint() {
        // A port that was free a moment ago: bound, read, released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = Settings::default();
        let e = run(&settings, Some(&format!("http://127.0.0.1:{port}")), false).unwrap_err();
        assert!(matches!(e, StatusError::Unreachable { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "no trunkline answered at http://127.0.0.1:{port}: "
            )) && text.ends_with("(is it running? check ADMIN_LISTEN / --admin)"),
            "{text}"
        );
    }

    #[test]
    fn port_zero_asks_for_admin() {
        let mut settings = Settings::default();
        settings.admin.listen = "127.0.0.1:0".parse().unwrap();
        let e = run(&settings, None, false).unwrap_err().to_string();
        assert!(e.contains("port 0") && e.contains("--admin"), "{e}");
    }

    /// A stand-in admin API: the registration list for the right token only, and HTML
    /// on another path, as a different service on the port would answer.
    async fn stand_in() -> Url {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/api/registrations",
                get(|headers: HeaderMap| async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some("Bearer the-token")
                    {
                        (StatusCode::OK, r#"[{"id":"p-1","status":"registered"}]"#)
                    } else {
                        (
                            StatusCode::UNAUTHORIZED,
                            r#"{"error":"missing or wrong bearer token"}"#,
                        )
                    }
                }),
            )
            .route(
                "/other/api/registrations",
                get(|| async { "<html>hello</html>" }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&url).unwrap()
    }

    const REGS: &str = "api/registrations";

    #[tokio::test]
    async fn the_token_is_sent_and_refusals_and_strangers_are_explained() {
        let base = stand_in().await;
        let rows: Vec<RegistrationJson> = fetch(&base, REGS, Some("the-token")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, "p-1");

        let e = fetch::<Vec<RegistrationJson>>(&base, REGS, None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, StatusError::Refused { status: 401, .. }),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("HTTP 401: missing or wrong bearer token")
                && text.contains("ADMIN_TOKEN"),
            "{text}"
        );

        let e =
            fetch::<Vec<RegistrationJson>>(&base.join("other/").unwrap(), REGS, Some("the-token"))
                .await
                .unwrap_err();
        assert!(matches!(e, StatusError::NotTrunkline { .. }), "{e:?}");
        assert!(e.to_string().contains("--admin"), "{e}");
    }

    #[test]
    fn error_bodies_are_read_for_the_message() {
        assert_eq!(
            error_message(br#"{"error":"missing or wrong bearer token"}"#).as_deref(),
            Some("missing or wrong bearer token")
        );
        assert_eq!(error_message(b"<html>"), None);
    }
}
