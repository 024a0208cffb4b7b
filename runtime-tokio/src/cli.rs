//! The command line of `trunkline`.
//!
//! Flags that override configuration are kept as the text the user typed: they are
//! checked by [`crate::config`] together with the environment and the config file, so a
//! bad value gets the same message (naming the flag, the environment variable and the
//! config key) and the same exit code whichever way it came in.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `trunkline [global flags] [subcommand]`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "trunkline",
    version,
    about = "SIP trunk registration controller and B2BUA",
    long_about = "SIP trunk registration controller and B2BUA.\n\n\
        Configuration precedence: command-line flags > environment variables > \
        config file (--config or TRUNKLINE_CONFIG) > defaults."
)]
pub struct Cli {
    /// TOML config file.
    #[arg(long, global = true, env = "TRUNKLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log level: trace, debug, info, warn, error, or a pino number 10-60 [env: LOG_LEVEL] [default: info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log format: json, pretty or auto (json when stdout is not a terminal) [env: LOG_FORMAT].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// SIP port for UDP and TCP [env: SIP_PORT] [default: 5060].
    #[arg(long, global = true, value_name = "PORT")]
    pub sip_port: Option<String>,

    /// IP address the SIP sockets bind to [env: SIP_LISTEN_ADDRESS] [default: 0.0.0.0].
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub sip_listen_address: Option<String>,

    /// Address:port of the admin HTTP API [env: ADMIN_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDRESS:PORT")]
    pub admin_listen: Option<String>,

    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the controller (the default).
    Run,
    /// Load and validate the configuration, print it with secrets redacted, exit 0 or 1.
    CheckConfig,
    /// Show the registrations of a running trunkline, asked through its admin API.
    Status {
        /// Base URL of the admin API, e.g. http://127.0.0.1:8080 (`http://` may be left
        /// out) [default: http://<admin.listen>].
        #[arg(long, value_name = "URL")]
        admin: Option<String>,
        /// Show long names and errors whole instead of cutting them with `…`.
        #[arg(long)]
        wide: bool,
    },
    /// A self-contained tour on loopback: registrar, backend and callee in-process.
    Demo,
}

impl Cli {
    /// The subcommand to run: `run` when none was given.
    pub fn subcommand(&self) -> Command {
        self.command.clone().unwrap_or(Command::Run)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn definition_is_consistent() {
        <Cli as CommandFactory>::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_run() {
        let cli = parse(&["trunkline"]);
        assert_eq!(cli.command, None);
        assert_eq!(cli.subcommand(), Command::Run);
    }

    #[test]
    fn subcommands_parse() {
        assert_eq!(parse(&["trunkline", "run"]).subcommand(), Command::Run);
        assert_eq!(
            parse(&["trunkline", "check-config"]).subcommand(),
            Command::CheckConfig
        );
        assert_eq!(parse(&["trunkline", "demo"]).subcommand(), Command::Demo);
        assert_eq!(
            parse(&["trunkline", "status"]).subcommand(),
            Command::Status {
                admin: None,
                wide: false
            }
        );
        assert_eq!(
            parse(&["trunkline", "status", "--admin", "http://10.0.0.1:9090"]).subcommand(),
            Command::Status {
                admin: Some("http://10.0.0.1:9090".into()),
                wide: false
            }
        );
        assert_eq!(
            parse(&["trunkline", "status", "--wide"]).subcommand(),
            Command::Status {
                admin: None,
                wide: true
            }
        );
    }

    #[test]
    fn global_flags_before_or_after_the_subcommand() {
        let before = parse(&[
            "trunkline",
            "--config",
            "/etc/trunkline.toml",
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--sip-port",
            "5070",
            "--sip-listen-address",
            "10.0.0.1",
            "--admin-listen",
            "0.0.0.0:9000",
            "check-config",
        ]);
        let after = parse(&[
            "trunkline",
            "check-config",
            "--config",
            "/etc/trunkline.toml",
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--sip-port",
            "5070",
            "--sip-listen-address",
            "10.0.0.1",
            "--admin-listen",
            "0.0.0.0:9000",
        ]);
        assert_eq!(before, after);
        assert_eq!(before.config, Some(PathBuf::from("/etc/trunkline.toml")));
        assert_eq!(before.log_level.as_deref(), Some("debug"));
        assert_eq!(before.log_format.as_deref(), Some("json"));
        assert_eq!(before.sip_port.as_deref(), Some("5070"));
        assert_eq!(before.sip_listen_address.as_deref(), Some("10.0.0.1"));
        assert_eq!(before.admin_listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(before.subcommand(), Command::CheckConfig);

        let status = parse(&["trunkline", "status", "--sip-port", "5070"]);
        assert_eq!(status.sip_port.as_deref(), Some("5070"));
    }

    #[test]
    fn unknown_subcommand_is_rejected() {
        assert!(Cli::try_parse_from(["trunkline", "frobnicate"]).is_err());
    }
}
