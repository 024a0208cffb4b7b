//! Registers accounts with a registrar on the smol driver, no config file needed.
//!
//! ```text
//! cargo run -p runtime-smol --example register -- REGISTRAR USER:PASSWORD... [--bind ADDR] [--seconds N]
//! cargo run -p runtime-smol --example register -- 127.0.0.1:5090 alice:secret bob:wrong --seconds 20
//! ```
//!
//! Each `USER:PASSWORD` becomes a provider with id `p-USER` registering `USER` at
//! `REGISTRAR` (host:port). Statuses go to an in-memory backend ([`StaticBackend`]) and
//! are printed at the end. The run stops after `--seconds` (default 30) or when a line
//! is entered on stdin, un-registering everything first. `--bind` (default
//! `127.0.0.1:0`) is the SIP socket; its address is written in Contact.
//!
//! A registrar to try it against: `bash scripts/run-local.sh` starts the test Kamailio
//! (see tests/README.md for its accounts and passwords).

use runtime_smol::{bind_udp, run, DriverConfig, StaticBackend};
use sip_core::{Config, Controller, ProviderSpec, Secret};
use smol::io::AsyncBufReadExt as _;
use smol::stream::StreamExt as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

struct Args {
    registrar: SocketAddr,
    accounts: Vec<(String, String)>,
    bind: SocketAddr,
    seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut registrar = None;
    let mut accounts = Vec::new();
    let mut bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut seconds = 30;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => {
                let v = args.next().ok_or("--bind needs an address")?;
                bind = v.parse().map_err(|e| format!("--bind {v}: {e}"))?;
            }
            "--seconds" => {
                let v = args.next().ok_or("--seconds needs a number")?;
                seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?;
            }
            _ if registrar.is_none() => {
                registrar = Some(
                    arg.parse()
                        .map_err(|e| format!("registrar {arg:?} is not host:port: {e}"))?,
                );
            }
            _ => {
                let (user, password) = arg
                    .split_once(':')
                    .ok_or_else(|| format!("{arg:?} is not USER:PASSWORD"))?;
                accounts.push((user.to_owned(), password.to_owned()));
            }
        }
    }
    let registrar = registrar
        .ok_or("usage: register REGISTRAR USER:PASSWORD... [--bind ADDR] [--seconds N]")?;
    if accounts.is_empty() {
        return Err("give at least one USER:PASSWORD".to_owned());
    }
    Ok(Args {
        registrar,
        accounts,
        bind,
        seconds,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("register: {e}");
            std::process::exit(2);
        }
    };
    let providers = args
        .accounts
        .iter()
        .map(|(user, password)| ProviderSpec {
            id: format!("p-{user}"),
            name: user.clone(),
            host: args.registrar.ip().to_string(),
            port: Some(i64::from(args.registrar.port())),
            username: user.clone(),
            password: Secret::new(password.clone()),
            ..ProviderSpec::default()
        })
        .collect();
    let backend = StaticBackend::new(providers);

    let result = smol::block_on(async {
        let socket = bind_udp(args.bind, 0)?;
        let local = socket
            .local_addr()
            .map_err(|e| format!("reading the socket address: {e}"))?;
        eprintln!("register: SIP on udp {local}, registrar {}", args.registrar);
        let cfg = Config {
            local_port: local.port(),
            contact_host: Some(local.ip().to_string()),
            sync_interval: None,
            ..Config::default()
        };
        // Call-IDs and tags must differ between runs: seed from the clock.
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let core = Controller::new(cfg, seed, Instant::now(), SystemTime::now());
        let seconds = args.seconds;
        let stop = async move {
            let line = async {
                let mut lines =
                    smol::io::BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
                if !matches!(lines.next().await, Some(Ok(_))) {
                    // stdin closed (or /dev/null): only the timeout stops the run.
                    std::future::pending::<()>().await;
                }
            };
            let timeout = async {
                smol::Timer::after(Duration::from_secs(seconds)).await;
            };
            smol::future::or(line, timeout).await;
        };
        let exit = run(
            core,
            socket,
            Default::default(),
            backend.clone(),
            DriverConfig::default(),
            stop,
            |event| eprintln!("register: {event:?}"),
        )
        .await?;
        eprintln!("register: driver stopped ({exit:?})");
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    if let Err(e) = result {
        eprintln!("register: {e}");
        std::process::exit(1);
    }
    for (id, status) in backend.statuses() {
        println!(
            "{id}: {} {}",
            status.register_status.as_str(),
            status.register_error.unwrap_or_default()
        );
    }
}
