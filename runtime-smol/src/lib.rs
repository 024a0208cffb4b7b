//! # runtime-smol — the smol driver of `sip-core`
//!
//! A second, deliberately small driver for [`sip_core::Controller`] on
//! [smol](https://docs.rs/smol): the proof that the core depends on no particular async
//! runtime. It mirrors the tokio driver of the `trunkline` binary
//! (`runtime-tokio/src/driver.rs`) and, like it, makes no SIP decision: it moves
//! datagrams, backend replies, DNS answers and time between the world and the core.
//!
//! ```no_run
//! use runtime_smol::{bind_udp, run, DriverConfig, HttpBackend, Listeners};
//! use sip_core::{Config, Controller, Secret};
//! use std::time::{Duration, Instant, SystemTime};
//!
//! smol::block_on(async {
//!     let socket = bind_udp("127.0.0.1:5060".parse()?, 0)?;
//!     let cfg = Config { local_port: 5060, ..Config::default() };
//!     let core = Controller::new(cfg, 42, Instant::now(), SystemTime::now());
//!     let backend = HttpBackend::new(
//!         "http://127.0.0.1:8080",
//!         Secret::new("api-key"),
//!         Duration::from_secs(5),
//!     )?;
//!     let (stop, stopped) = smol::channel::bounded::<()>(1);
//!     # drop(stop);
//!     let exit = run(
//!         core,
//!         socket,
//!         Listeners::default(),
//!         backend,
//!         // The system's DNS; `dns_server: Some(addr)` asks that server only.
//!         DriverConfig::default(),
//!         async move { let _ = stopped.recv().await; },
//!         |event| eprintln!("{event:?}"),
//!     )
//!     .await?;
//!     eprintln!("driver stopped: {exit:?}");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`run`] is the loop: drain every output, check the clock against the deadline
//!   before sleeping, sleep on one timer, perform one mutation per wake. It ends when
//!   the core reports [`sip_core::Event::ShutdownComplete`] after the `shutdown` future
//!   resolved (or when the grace ran out).
//! * [`Backend`] carries out backend operations: [`HttpBackend`] speaks the backend
//!   API over HTTP with hyper's runtime-agnostic client on smol's sockets (reqwest needs
//!   a tokio reactor), using the shared mapping [`sip_core::backend::http`];
//!   [`StaticBackend`] serves a fixed provider list and keeps the reported statuses.
//! * DNS (A/AAAA, SRV, NAPTR with their TTLs) is driver-net's [`driver_net::Dns`],
//!   the same as the tokio driver's, on hickory's runtime traits implemented for smol
//!   in [`dns_runtime`]; [`DriverConfig::dns_server`] picks the server.

mod backend;
pub mod dns_runtime;
mod driver;
mod http;

pub use backend::{Backend, StaticBackend};
pub use driver::{bind_udp, run, DriverConfig, DriverError, Exit, Listeners};
pub use http::{HttpBackend, HttpBackendError};
