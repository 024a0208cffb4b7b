//! `trunkline run`: builds the core from the settings and hands it to the driver.

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
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Client(#[from] crate::backend_http::ClientError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
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
        ..Config::default()
    }
}

/// Runs the controller until a signal shuts it down.
pub fn run(mut settings: Settings) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    rt.block_on(async move {
        let bind = SocketAddr::new(settings.sip.listen_address, settings.sip.port);
        let socket = driver::bind_udp(bind, settings.sip.socket_buffer_bytes)?;
        let local_port = socket.local_addr().map_or(settings.sip.port, |a| a.port());
        let backend = match &settings.backend {
            Some(b) => Backend::Http(HttpBackend::new(
                &b.url,
                b.api_key.clone(),
                b.request_timeout,
            )?),
            None => Backend::File {
                providers: std::mem::take(&mut settings.providers),
                status_file: settings.status.file.clone(),
            },
        };
        let cfg = core_config(&settings, local_port);
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
        let core = Controller::new(cfg, u64::from_le_bytes(seed), now, wall);
        tracing::info!(
            sip = %socket.local_addr().unwrap_or(bind),
            mode = if settings.backend.is_some() { "backend" } else { "file" },
            "trunkline started"
        );
        let dcfg = DriverConfig {
            bind,
            shutdown_grace: settings.shutdown_grace,
            learn_local_ip,
        };
        // The admin API (issue: operator surface) sends its calls here.
        let (_admin_tx, admin_rx) = tokio::sync::mpsc::channel(64);
        driver::run(core, socket, backend, dcfg, EventLog, admin_rx).await?;
        Ok(())
    })
}
