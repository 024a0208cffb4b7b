//! The effective configuration as TOML with secrets redacted (`trunkline check-config`).

use super::Settings;
use serde::Serialize;
use sip_core::secret::Secret;
use sip_core::RejectUnknown;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Shown instead of every secret.
const REDACTED: &str = "<redacted>";

/// Same keys as the config file, so the output can be edited and loaded back.
#[derive(Serialize)]
struct Effective<'a> {
    shutdown_grace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<Backend<'a>>,
    sip: Sip<'a>,
    #[serde(skip_serializing_if = "Dns::is_empty")]
    dns: Dns,
    routing: Routing<'a>,
    #[serde(skip_serializing_if = "Media::is_empty")]
    media: Media<'a>,
    admin: Admin,
    log: Log,
    status: Status,
    calls: Calls,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    providers: Vec<Provider<'a>>,
}

#[derive(Serialize)]
struct Backend<'a> {
    url: &'a str,
    api_key: &'static str,
    sync_interval: String,
    request_timeout: String,
}

#[derive(Serialize)]
struct Sip<'a> {
    listen_address: String,
    port: u16,
    tls_port: u16,
    keepalive_interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_address: Option<&'a str>,
    socket_buffer: u64,
    register_rate: u32,
    user_agent: &'a str,
    allowed_sources: Vec<String>,
    reject_unknown: &'static str,
}

#[derive(Serialize)]
struct Dns {
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self.server.is_none()
    }
}

#[derive(Serialize)]
struct Routing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    default_domain: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    dids: &'a BTreeMap<String, String>,
    lookup_timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password: Option<&'static str>,
}

#[derive(Serialize)]
struct Media<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    rtpengine: Option<&'a str>,
}

impl Media<'_> {
    fn is_empty(&self) -> bool {
        self.rtpengine.is_none()
    }
}

#[derive(Serialize)]
struct Admin {
    listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'static str>,
}

#[derive(Serialize)]
struct Log {
    level: &'static str,
    format: &'static str,
}

#[derive(Serialize)]
struct Status {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_file: Option<String>,
}

/// Limits are shown as the config takes them: 0 for no limit.
#[derive(Serialize)]
struct Calls {
    ring_timeout: String,
    max_duration: String,
    max_calls: u32,
    max_calls_per_provider: u32,
    drain: String,
}

#[derive(Serialize)]
struct Provider<'a> {
    id: &'a str,
    name: &'a str,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'a str>,
    username: &'a str,
    password: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbound_proxy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// An empty secret is shown as empty: that it is missing is what the operator needs to
/// see, and it reveals nothing.
fn redact(secret: &Secret) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        REDACTED
    }
}

pub(super) fn redacted_toml(s: &Settings) -> String {
    let c = &s.calls;
    let effective = Effective {
        shutdown_grace: duration(s.shutdown_grace),
        backend: s.backend.as_ref().map(|b| Backend {
            url: &b.url,
            api_key: redact(&b.api_key),
            sync_interval: duration(b.sync_interval),
            request_timeout: duration(b.request_timeout),
        }),
        sip: Sip {
            listen_address: s.sip.listen_address.to_string(),
            port: s.sip.port,
            tls_port: s.sip.tls_port,
            keepalive_interval: s.sip.keepalive_interval.map_or("0s".to_owned(), |d| {
                humantime::format_duration(d).to_string()
            }),
            tls_cert_file: s
                .sip
                .tls
                .cert_file
                .as_ref()
                .map(|p| p.display().to_string()),
            // The path is no secret; the key it holds never appears anywhere.
            tls_key_file: s.sip.tls.key_file.as_ref().map(|p| p.display().to_string()),
            tls_ca_file: s.sip.tls.ca_file.as_ref().map(|p| p.display().to_string()),
            public_address: s.sip.public_address.as_deref(),
            socket_buffer: u64::try_from(s.sip.socket_buffer_bytes).unwrap_or(u64::MAX),
            register_rate: s.sip.register_rate,
            user_agent: &s.sip.user_agent,
            allowed_sources: c.allowed_sources.iter().map(ToString::to_string).collect(),
            reject_unknown: match c.reject_unknown {
                RejectUnknown::Forbidden => "403",
                RejectUnknown::Drop => "drop",
            },
        },
        dns: Dns {
            server: s.dns.server.map(|a| a.to_string()),
        },
        routing: Routing {
            default_domain: s.routing.default_domain.as_deref(),
            dids: &s.routing.dids,
            lookup_timeout: duration(s.routing.lookup_timeout),
            auth_username: c.destination_auth.as_ref().map(|a| a.username.as_str()),
            auth_password: c.destination_auth.as_ref().map(|a| redact(&a.password)),
        },
        media: Media {
            rtpengine: s.media.rtpengine.as_deref(),
        },
        admin: Admin {
            listen: s.admin.listen.to_string(),
            token: s.admin.token.as_ref().map(redact),
        },
        log: Log {
            level: s.log.level.as_str(),
            format: s.log.format.map_or("auto", |f| f.as_str()),
        },
        status: Status {
            file: s.status.file.display().to_string(),
            state_file: s
                .status
                .state_file
                .as_ref()
                .map(|p| p.display().to_string()),
        },
        calls: Calls {
            ring_timeout: duration(c.ring_timeout),
            max_duration: duration(c.max_duration),
            max_calls: c.max_calls.unwrap_or(0),
            max_calls_per_provider: c.max_calls_per_provider.unwrap_or(0),
            drain: duration(c.drain),
        },
        providers: s
            .providers
            .iter()
            .map(|p| Provider {
                id: &p.id,
                name: &p.name,
                host: &p.host,
                port: p.port,
                transport: p.transport.as_deref(),
                username: &p.username,
                password: redact(&p.password),
                auth_username: p.auth_username.as_deref(),
                realm: p.realm.as_deref(),
                expires: p.expires,
                outbound_proxy: p.outbound_proxy.as_deref(),
                enabled: p.enabled,
            })
            .collect(),
    };

    let mut out = String::from("# trunkline effective configuration (secrets redacted)\n");
    // Writing to a String cannot fail.
    let _ = match &s.backend {
        Some(b) => writeln!(
            out,
            "# mode: backend, providers are fetched from {} every {}",
            b.url,
            duration(b.sync_interval)
        ),
        None => writeln!(
            out,
            "# mode: file, {} provider(s) from [[providers]]",
            s.providers.len()
        ),
    };
    let _ = writeln!(out, "# admin API: {}", s.admin.local_url());
    if s.sip.public_address.is_none() {
        out.push_str("# sip.public_address: not set, learned from the route to each registrar\n");
    }
    if s.dns.server.is_none() {
        out.push_str(
            "# dns.server: not set, the system's resolver (/etc/resolv.conf, /etc/hosts)\n",
        );
    }
    if s.media.rtpengine.is_none() {
        out.push_str("# media.rtpengine: not set, no media anchoring\n");
    }
    if s.routing.default_domain.is_none() && s.backend.is_none() {
        out.push_str("# routing.default_domain: not set, DIDs without an entry in [routing.dids] cannot be routed\n");
    }
    if let Some(any) = c.allowed_sources.iter().find(|n| n.prefix_len() == 0) {
        let _ = writeln!(
            out,
            "# sip.allowed_sources: {any} admits INVITEs from every address of its family"
        );
    }
    out.push('\n');
    match toml::to_string(&effective) {
        Ok(body) => out.push_str(&body),
        // Only strings, numbers and tables are serialized: this cannot happen, but a
        // diagnostic beats a panic in a command whose job is diagnostics.
        Err(e) => {
            let _ = writeln!(out, "# cannot render the configuration as TOML: {e}");
        }
    }
    out
}
