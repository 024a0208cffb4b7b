//! `trunkline run`: builds the core from the settings and hands it to the driver.

use crate::admin;
use crate::backend_http::HttpBackend;
use crate::config::Settings;
use crate::driver::{self, Backend, DriverConfig, DriverError};
use crate::events::EventLog;
use sip_core::{Config, Controller};
use std::net::SocketAddr;
use std::time::Duration;

/// Why `run` stopped with an error; each maps to an exit code (CONTRACT.md §1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The driver could not run (SIP bind, signal handler).
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The backend HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] crate::backend_http::ClientError),
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The TLS files could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] driver_net::TlsError),
    /// The admin API's TCP port could not be bound.
    #[error("cannot bind the admin API on tcp {addr}: {source} (is another process using the port? set ADMIN_LISTEN, admin.listen or --admin-listen to a free address, e.g. 127.0.0.1:8081; port 0 picks any free port)")]
    AdminBind {
        /// `admin.listen`.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// The core's config from the settings.
pub fn core_config(s: &Settings, local_port: u16) -> Config {
    Config {
        local_port,
        contact_host: s.sip.public_address.clone().or_else(|| {
            (!s.sip.listen_address.is_unspecified()).then(|| s.sip.listen_address.to_string())
        }),
        user_agent: s.sip.user_agent.clone(),
        register_rate: s.sip.register_rate,
        backend_timeout: s
            .backend
            .as_ref()
            .map_or(Duration::from_secs(5), |b| b.request_timeout),
        sync_interval: s.backend.as_ref().map(|b| b.sync_interval),
        // The status file takes every report of a burst in one write: throttling them
        // would turn ten thousand reports into hundreds of whole-file writes.
        max_reports_in_flight: if s.backend.is_some() { 32 } else { usize::MAX },
        default_domain: s.routing.default_domain.clone(),
        fixed_routes: s.routing.dids.clone(),
        routes_from_backend: s.backend.is_some(),
        route_lookup_timeout: s.routing.lookup_timeout,
        calls: s.calls.clone(),
        streams: sip_core::connections::StreamLimits {
            keepalive: s.sip.keepalive_interval,
            ..Default::default()
        },
        ..Config::default()
    }
}

/// Runs the controller until a signal shuts it down.
pub fn run(mut settings: Settings) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    // Before any socket: the admin API's share is sized from the limit in force.
    let open_files = admin::fd_budget::raise_open_file_limit();
    rt.block_on(async move {
        let bind = SocketAddr::new(settings.sip.listen_address, settings.sip.port);
        let socket = driver::bind_udp(bind, settings.sip.socket_buffer_bytes)?;
        let local_port = socket.local_addr().map_or(settings.sip.port, |a| a.port());
        let tcp = driver::bind_tcp(SocketAddr::new(bind.ip(), local_port)).await?;
        let files = &settings.sip.tls;
        let tls = driver_net::TlsConfig::load(
            files.ca_file.as_deref(),
            files.cert_file.as_deref(),
            files.key_file.as_deref(),
        )?;
        // The TLS listener only with an identity to present (CONTRACT.md §7).
        let tls_listener = match tls.server() {
            Some(_) => {
                let addr = SocketAddr::new(bind.ip(), settings.sip.tls_port);
                Some(driver::bind_tls(addr).await?)
            }
            None => None,
        };
        let tls_port = tls_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port());
        // Bound before the driver starts, so a taken port stops trunkline at once
        // (exit 2) instead of leaving it running without its probes and metrics.
        let admin_addr = settings.admin.listen;
        let admin_listener = tokio::net::TcpListener::bind(admin_addr)
            .await
            .map_err(|source| RunError::AdminBind {
                addr: admin_addr,
                source,
            })?;
        let backend = match &settings.backend {
            Some(b) => Backend::Http(HttpBackend::new(
                &b.url,
                b.api_key.clone(),
                b.request_timeout,
            )?),
            None => Backend::File {
                providers: Some(std::mem::take(&mut settings.providers)),
                reload_from: settings.config_file.clone(),
            },
        };
        // File mode keeps everything in the status file; backend mode keeps the binding
        // identities in a small state file of its own.
        let store = match &settings.backend {
            None => settings.status.file.clone(),
            Some(_) => settings
                .status
                .state_file
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from("trunkline-state.json")),
        };
        let cfg = Config {
            tls_port,
            ..core_config(&settings, local_port)
        };
        let learn_local_ip = cfg
            .contact_host
            .is_none()
            .then_some(settings.sip.listen_address);
        let mut seed = [0u8; 8];
        // A fresh seed per run: Call-IDs and tags must differ between runs.
        if getrandom::fill(&mut seed).is_err() {
            seed = u64::from(std::process::id()).to_le_bytes();
        }
        let (now, wall) = driver::anchors();
        let mut core = Controller::new(cfg, u64::from_le_bytes(seed), now, wall);
        core.restore(crate::store::load_bindings(&store));
        tracing::info!(
            sip = %socket.local_addr().unwrap_or(bind),
            // The bound address, so that `ADMIN_LISTEN=127.0.0.1:0` can be found.
            admin = %admin_listener.local_addr().unwrap_or(admin_addr),
            tls = %tls_port.map_or("off (no SIP_TLS_CERT_FILE)".to_owned(), |p| p.to_string()),
            tls_roots = tls.roots(),
            dns = %settings.dns.server.map_or("system (/etc/resolv.conf)".to_owned(), |a| a.to_string()),
            mode = if settings.backend.is_some() { "backend" } else { "file" },
            "trunkline started"
        );
        let dcfg = DriverConfig {
            bind,
            shutdown_grace: settings.shutdown_grace,
            learn_local_ip,
            store,
            tls: Some(tls),
            dns_server: settings.dns.server,
        };
        // The admin API sends its calls here; the driver answers between two mutations.
        let (admin_tx, admin_rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(admin::serve(
            admin_listener,
            admin::AdminState::new(admin_tx, settings.admin.token.clone()),
            admin::fd_budget::admin_connection_cap(open_files),
        ));
        driver::run(
            core,
            socket,
            driver::Listeners {
                tcp: Some(tcp),
                tls: tls_listener,
            },
            backend,
            dcfg,
            EventLog::default(),
            admin_rx,
        )
        .await?;
        Ok(())
    })
}
