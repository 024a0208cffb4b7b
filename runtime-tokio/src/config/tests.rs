//! Tests of configuration loading: precedence, error messages, providers, redaction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use clap::Parser;
use std::path::Path;

const PASSWORD: &str = "hunter2-Pr0vider-PASSWORD";
const API_KEY: &str = "ak-7f3e-BACKEND-API-KEY";
const TOKEN: &str = "tok-91c2-ADMIN-TOKEN";

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("trunkline").chain(args.iter().copied())).unwrap()
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Loads with `args`, `env` and, when given, `toml` as the config file `test.toml`.
fn load_with(
    args: &[&str],
    env: &[(&str, &str)],
    toml: Option<&str>,
) -> Result<Settings, ConfigError> {
    let file = toml
        .map(|t| file::parse_text(Path::new("test.toml"), t))
        .transpose()?;
    resolve(&cli(args), &env_of(env), file)
}

fn err(args: &[&str], env: &[(&str, &str)], toml: Option<&str>) -> String {
    match load_with(args, env, toml) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} should mention {part:?}"
        );
    }
}

/// A unique scratch file, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "trunkline-config-test-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const CONTRACT_EXAMPLE: &str = r#"
[sip]
port = 5060
public_address = "203.0.113.10"

[[providers]]
id = "wavoip-main"            # stable id, used in status and admin API
name = "WaVoIP"
host = "sipv2.wavoip.com"     # name or IP; DNS per RFC 3263 where it is a name
port = 5060                   # optional
transport = "udp"             # udp | tcp | tls
username = "W81b8ea99dd62"
password = "hunter2-Pr0vider-PASSWORD"
auth_username = "W81b8ea99dd62" # optional, defaults to username
realm = "sipv2.wavoip.com"     # optional, restricts which realm we answer
expires = 3600                # requested; the registrar's answer wins
outbound_proxy = "sip:proxy.example:5060" # optional
enabled = true

[routing]
default_domain = "my-project.sip.livekit.cloud"
[routing.dids]
"+5511999990000" = "sip:+5511999990000@other.sip.livekit.cloud;transport=tcp"

[status]
file = "trunkline-status.json" # file mode: where status is persisted
"#;

// ---------------------------------------------------------------- defaults, precedence

#[test]
fn nothing_configured_gives_the_documented_defaults() {
    let s = load_with(&[], &[], None).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.backend, None);
    assert_eq!(s.sip.listen_address.to_string(), "0.0.0.0");
    assert_eq!(s.sip.port, 5060);
    assert_eq!(s.sip.tls_port, 5061);
    assert_eq!(s.sip.public_address, None);
    assert_eq!(s.sip.socket_buffer_bytes, 4 * 1024 * 1024);
    assert_eq!(s.sip.register_rate, 200);
    assert!(s.sip.user_agent.starts_with("trunkline/"));
    assert_eq!(s.admin.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.admin.token, None);
    assert_eq!(s.log.level, LogLevel::Info);
    assert_eq!(s.log.format, None);
    assert_eq!(s.status.file, PathBuf::from("trunkline-status.json"));
    assert_eq!(s.status.state_file, None);
    assert_eq!(s.shutdown_grace, Duration::from_secs(5));
    assert!(s.providers.is_empty());
    assert!(s.routing.dids.is_empty());
    assert_eq!(s.media.rtpengine, None);
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let file = r#"
        [sip]
        port = 5070
        listen_address = "10.0.0.1"
        [admin]
        listen = "127.0.0.1:7001"
        [log]
        level = "warn"
        format = "pretty"
    "#;
    let env = [
        ("SIP_PORT", "5080"),
        ("SIP_LISTEN_ADDRESS", "10.0.0.2"),
        ("ADMIN_LISTEN", "127.0.0.1:7002"),
        ("LOG_LEVEL", "error"),
        ("LOG_FORMAT", "json"),
    ];
    let flags = [
        "--sip-port",
        "5090",
        "--sip-listen-address",
        "10.0.0.3",
        "--admin-listen",
        "127.0.0.1:7003",
        "--log-level",
        "debug",
        "--log-format",
        "pretty",
    ];

    let s = load_with(&flags, &env, Some(file)).unwrap();
    assert_eq!(s.sip.port, 5090);
    assert_eq!(s.sip.listen_address.to_string(), "10.0.0.3");
    assert_eq!(s.admin.listen.to_string(), "127.0.0.1:7003");
    assert_eq!(s.log.level, LogLevel::Debug);
    assert_eq!(s.log.format, Some(LogFormat::Pretty));

    let s = load_with(&[], &env, Some(file)).unwrap();
    assert_eq!(s.sip.port, 5080);
    assert_eq!(s.sip.listen_address.to_string(), "10.0.0.2");
    assert_eq!(s.admin.listen.to_string(), "127.0.0.1:7002");
    assert_eq!(s.log.level, LogLevel::Error);
    assert_eq!(s.log.format, Some(LogFormat::Json));

    let s = load_with(&[], &[], Some(file)).unwrap();
    assert_eq!(s.sip.port, 5070);
    assert_eq!(s.sip.listen_address.to_string(), "10.0.0.1");
    assert_eq!(s.admin.listen.to_string(), "127.0.0.1:7001");
    assert_eq!(s.log.level, LogLevel::Warn);
    assert_eq!(s.log.format, Some(LogFormat::Pretty));

    let s = load_with(&[], &[], None).unwrap();
    assert_eq!(s.sip.port, 5060);
    assert_eq!(s.log.level, LogLevel::Info);
}

#[test]
fn env_beats_file_for_env_only_keys() {
    let file = r#"
        shutdown_grace = "20s"
        [backend]
        url = "https://file.example"
        api_key = "file-key"
        sync_interval = "10m"
        request_timeout = 2
        [sip]
        public_address = "198.51.100.1"
        socket_buffer = 1048576
        register_rate = 50
        tls_port = 5071
        user_agent = "file-agent"
        [routing]
        default_domain = "file.sip.livekit.cloud"
        [media]
        rtpengine = "127.0.0.1:22222"
        [admin]
        token = "file-token"
        [status]
        file = "/var/lib/trunkline/file-status.json"
        state_file = "/var/lib/trunkline/file-state.json"
    "#;
    let s = load_with(&[], &[], Some(file)).unwrap();
    let b = s.backend.clone().unwrap();
    assert_eq!(b.url, "https://file.example");
    assert_eq!(b.api_key.expose(), "file-key");
    assert_eq!(b.sync_interval, Duration::from_secs(600));
    assert_eq!(b.request_timeout, Duration::from_secs(2));
    assert_eq!(s.shutdown_grace, Duration::from_secs(20));
    assert_eq!(s.sip.public_address.as_deref(), Some("198.51.100.1"));
    assert_eq!(s.sip.socket_buffer_bytes, 1_048_576);
    assert_eq!(s.sip.register_rate, 50);
    assert_eq!(s.sip.tls_port, 5071);
    assert_eq!(s.sip.user_agent, "file-agent");
    assert_eq!(
        s.routing.default_domain.as_deref(),
        Some("file.sip.livekit.cloud")
    );
    assert_eq!(s.media.rtpengine.as_deref(), Some("127.0.0.1:22222"));
    assert_eq!(s.admin.token.as_ref().unwrap().expose(), "file-token");
    assert_eq!(
        s.status.file,
        PathBuf::from("/var/lib/trunkline/file-status.json")
    );

    let env = [
        ("BACKEND_URL", "https://env.example/"),
        ("API_KEY", "env-key"),
        ("SYNC_INTERVAL", "5m"),
        ("BACKEND_TIMEOUT", "1500ms"),
        ("SHUTDOWN_GRACE", "30"),
        ("SIP_PUBLIC_ADDRESS", "sip.example.net"),
        ("SIP_SOCKET_BUFFER", "8MiB"),
        ("REGISTER_RATE", "1000"),
        ("SIP_TLS_PORT", "5062"),
        ("SIP_USER_AGENT", "env-agent"),
        ("LIVEKIT_SIP_DOMAIN", "env.sip.livekit.cloud"),
        ("RTP_ENGINE", "rtpengine:22222"),
        ("ADMIN_TOKEN", "env-token"),
        ("STATUS_FILE", "env-status.json"),
        ("STATE_FILE", "env-state.json"),
    ];
    let s = load_with(&[], &env, Some(file)).unwrap();
    let b = s.backend.clone().unwrap();
    assert_eq!(b.url, "https://env.example", "trailing slash trimmed");
    assert_eq!(b.api_key.expose(), "env-key");
    assert_eq!(b.sync_interval, Duration::from_secs(300));
    assert_eq!(b.request_timeout, Duration::from_millis(1500));
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert_eq!(s.sip.public_address.as_deref(), Some("sip.example.net"));
    assert_eq!(s.sip.socket_buffer_bytes, 8 << 20);
    assert_eq!(s.sip.register_rate, 1000);
    assert_eq!(s.sip.tls_port, 5062);
    assert_eq!(s.sip.user_agent, "env-agent");
    assert_eq!(
        s.routing.default_domain.as_deref(),
        Some("env.sip.livekit.cloud")
    );
    assert_eq!(s.media.rtpengine.as_deref(), Some("rtpengine:22222"));
    assert_eq!(s.admin.token.as_ref().unwrap().expose(), "env-token");
    assert_eq!(s.status.file, PathBuf::from("env-status.json"));
    assert_eq!(s.status.state_file, Some(PathBuf::from("env-state.json")));
}

#[test]
fn empty_env_values_count_as_unset() {
    let s = load_with(
        &[],
        &[("SIP_PORT", ""), ("BACKEND_URL", "  "), ("LOG_LEVEL", "")],
        Some("[sip]\nport = 5070\n"),
    )
    .unwrap();
    assert_eq!(s.sip.port, 5070);
    assert_eq!(s.backend, None);
    assert_eq!(s.log.level, LogLevel::Info);
}

#[test]
fn numbers_may_be_written_as_strings_in_the_file() {
    let s = load_with(
        &[],
        &[],
        Some("[sip]\nport = \"5070\"\n[log]\nlevel = 40\n"),
    )
    .unwrap();
    assert_eq!(s.sip.port, 5070);
    assert_eq!(s.log.level, LogLevel::Warn);
}

#[test]
fn durations_accept_humantime_and_plain_seconds() {
    for (text, secs) in [("300s", 300), ("5m", 300), ("300", 300), ("1h", 3600)] {
        let s = load_with(
            &[],
            &[
                ("BACKEND_URL", "http://b"),
                ("API_KEY", "k"),
                ("SYNC_INTERVAL", text),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            s.backend.unwrap().sync_interval,
            Duration::from_secs(secs),
            "{text}"
        );
    }
    let s = load_with(&[], &[], Some("shutdown_grace = 0\n")).unwrap();
    assert_eq!(s.shutdown_grace, Duration::ZERO);
}

#[test]
fn pino_level_numbers() {
    for (n, level) in [
        ("10", LogLevel::Trace),
        ("20", LogLevel::Debug),
        ("30", LogLevel::Info),
        ("40", LogLevel::Warn),
        ("50", LogLevel::Error),
        ("60", LogLevel::Error),
    ] {
        let s = load_with(&[], &[("LOG_LEVEL", n)], None).unwrap();
        assert_eq!(s.log.level, level, "{n}");
    }
    let s = load_with(&["--log-level", "20"], &[], None).unwrap();
    assert_eq!(s.log.level, LogLevel::Debug);
    let s = load_with(
        &[],
        &[("LOG_FORMAT", "auto")],
        Some("[log]\nformat = \"json\"\n"),
    )
    .unwrap();
    assert_eq!(
        s.log.format, None,
        "auto from the environment beats the file"
    );
}

#[test]
fn config_path_comes_from_flag_or_trunkline_config() {
    let f = TempFile::new("[sip]\nport = 5071\n");
    let path = f.0.to_str().unwrap();
    let s = load_from(&cli(&["--config", path]), &env_of(&[])).unwrap();
    assert_eq!(s.sip.port, 5071);
    let s = load_from(&cli(&[]), &env_of(&[("TRUNKLINE_CONFIG", path)])).unwrap();
    assert_eq!(s.sip.port, 5071);
    let s = load_from(
        &cli(&["run", "--config", path]),
        &env_of(&[("SIP_PORT", "5072")]),
    )
    .unwrap();
    assert_eq!(s.sip.port, 5072);
}

// ---------------------------------------------------------------- errors name their key

#[test]
fn bad_port_names_the_key_from_every_source() {
    let e = err(&["--sip-port", "70000"], &[], None);
    assert_mentions(
        &e,
        &[
            "--sip-port",
            "SIP_PORT",
            "sip.port",
            "\"70000\"",
            "1 to 65535",
            "command line",
        ],
    );
    let e = err(&[], &[("SIP_PORT", "70000")], None);
    assert_mentions(
        &e,
        &[
            "SIP_PORT",
            "sip.port",
            "\"70000\"",
            "1 to 65535",
            "environment",
        ],
    );
    assert!(
        e.starts_with("invalid value \"70000\" for SIP_PORT (sip.port, --sip-port)"),
        "{e}"
    );
    let e = err(&[], &[], Some("[sip]\nport = 70000\n"));
    assert_mentions(
        &e,
        &["sip.port", "SIP_PORT", "70000", "test.toml", "1 to 65535"],
    );
    let e = err(&[], &[("SIP_TLS_PORT", "0")], None);
    assert_mentions(&e, &["SIP_TLS_PORT", "sip.tls_port"]);
}

#[test]
fn bad_duration_names_the_key() {
    let e = err(&[], &[("SYNC_INTERVAL", "soon")], None);
    assert_mentions(
        &e,
        &[
            "SYNC_INTERVAL",
            "backend.sync_interval",
            "\"soon\"",
            "300s",
            "5m",
        ],
    );
    let e = err(&[], &[], Some("shutdown_grace = \"forever\"\n"));
    assert_mentions(
        &e,
        &["shutdown_grace", "SHUTDOWN_GRACE", "test.toml", "duration"],
    );
    let e = err(&[], &[("BACKEND_TIMEOUT", "0")], None);
    assert_mentions(
        &e,
        &["BACKEND_TIMEOUT", "backend.request_timeout", "from 10ms"],
    );
    let e = err(&[], &[("SYNC_INTERVAL", "300000")], None);
    assert_mentions(&e, &["SYNC_INTERVAL", "1day"]);
}

#[test]
fn route_lookup_timeout_defaults_short_and_is_bounded() {
    let s = load_with(&[], &[], None).unwrap();
    assert_eq!(s.routing.lookup_timeout, Duration::from_secs(2));
    let s = load_with(&[], &[("ROUTE_LOOKUP_TIMEOUT", "750ms")], None).unwrap();
    assert_eq!(s.routing.lookup_timeout, Duration::from_millis(750));
    let s = load_with(&[], &[], Some("[routing]\nlookup_timeout = \"1s\"\n")).unwrap();
    assert_eq!(s.routing.lookup_timeout, Duration::from_secs(1));
    let e = err(&[], &[("ROUTE_LOOKUP_TIMEOUT", "5m")], None);
    assert_mentions(
        &e,
        &["ROUTE_LOOKUP_TIMEOUT", "routing.lookup_timeout", "30s"],
    );
}

#[test]
fn bad_log_level_names_the_key() {
    let e = err(&[], &[("LOG_LEVEL", "verbose")], None);
    assert_mentions(
        &e,
        &[
            "LOG_LEVEL",
            "log.level",
            "--log-level",
            "\"verbose\"",
            "trace",
            "pino",
        ],
    );
    let e = err(&["--log-level", "35"], &[], None);
    assert_mentions(&e, &["--log-level", "LOG_LEVEL", "log.level", "\"35\""]);
    let e = err(&[], &[("LOG_FORMAT", "xml")], None);
    assert_mentions(&e, &["LOG_FORMAT", "log.format", "json, pretty or auto"]);
}

#[test]
fn other_bad_values_name_their_key() {
    for (env, key) in [
        ("SIP_LISTEN_ADDRESS", "sip.listen_address"),
        ("SIP_PUBLIC_ADDRESS", "sip.public_address"),
        ("SIP_SOCKET_BUFFER", "sip.socket_buffer"),
        ("REGISTER_RATE", "sip.register_rate"),
        ("LIVEKIT_SIP_DOMAIN", "routing.default_domain"),
        ("RTP_ENGINE", "media.rtpengine"),
        ("ADMIN_LISTEN", "admin.listen"),
    ] {
        let e = err(&[], &[(env, "not valid!")], None);
        assert_mentions(&e, &[env, key, "\"not valid!\"", "expected"]);
    }
    let e = err(&[], &[("REGISTER_RATE", "0")], None);
    assert_mentions(&e, &["REGISTER_RATE", "from 1"]);
    let e = err(&[], &[("SIP_USER_AGENT", "a\r\nVia: evil")], None);
    assert_mentions(
        &e,
        &["SIP_USER_AGENT", "sip.user_agent", "control characters"],
    );
}

#[test]
fn unknown_keys_in_the_file_are_named() {
    let e = err(&[], &[], Some("[sip]\nprot = 5060\n"));
    assert_mentions(
        &e,
        &[
            "test.toml",
            "unknown key `sip.prot`",
            "did you mean `port`?",
            "listen_address",
        ],
    );
    let e = err(&[], &[], Some("[sipp]\nport = 5060\n"));
    assert_mentions(&e, &["unknown key `sipp`", "did you mean `sip`?"]);
    let e = err(&[], &[], Some("log_level = \"info\"\n"));
    assert_mentions(&e, &["unknown key `log_level`", "valid keys here are"]);
    let e = err(
        &[],
        &[],
        Some("[[providers]]\nid = \"a\"\npasword = \"x\"\n"),
    );
    assert_mentions(
        &e,
        &[
            "unknown key `providers[0].pasword`",
            "did you mean `password`?",
        ],
    );
    let e = err(&[], &[], Some("[routing]\ndid = {}\n"));
    assert_mentions(&e, &["unknown key `routing.did`", "did you mean `dids`?"]);
}

#[test]
fn wrong_toml_types_are_named() {
    let e = err(&[], &[], Some("[sip]\nport = [5060]\n"));
    assert_mentions(&e, &["test.toml", "sip.port: invalid type: array"]);
    let e = err(&[], &[], Some("sip = 5\n"));
    assert_mentions(&e, &["sip: invalid type: integer 5, expected a table"]);
    let e = err(&[], &[], Some("providers = 1\n"));
    assert_mentions(
        &e,
        &["providers: invalid type: integer 1, expected an array of tables"],
    );
    let e = err(&[], &[], Some("[routing.dids]\n\"+1\" = 5\n"));
    assert_mentions(
        &e,
        &["routing.dids.\"+1\": invalid type: integer 5, expected a string"],
    );
}

#[test]
fn toml_syntax_errors_give_the_line() {
    let e = err(&[], &[], Some("[sip]\nport = = 5\n"));
    assert_mentions(&e, &["test.toml is not valid TOML", "line 2"]);
}

#[test]
fn unreadable_config_file_is_named() {
    let missing = std::env::temp_dir().join("trunkline-no-such-dir/none.toml");
    let e = load_from(&cli(&["--config", missing.to_str().unwrap()]), &env_of(&[]))
        .unwrap_err()
        .to_string();
    assert_mentions(
        &e,
        &[
            "cannot read config file",
            "none.toml",
            "--config",
            "TRUNKLINE_CONFIG",
        ],
    );
}

#[test]
fn backend_url_needs_an_api_key() {
    let e = err(&[], &[("BACKEND_URL", "https://api.example.com")], None);
    assert_mentions(
        &e,
        &["API_KEY (backend.api_key) is required when BACKEND_URL is set"],
    );
    let e = err(
        &[],
        &[
            ("BACKEND_URL", "https://api.example.com"),
            ("API_KEY", "  "),
        ],
        None,
    );
    assert_mentions(
        &e,
        &["API_KEY (backend.api_key) is required when BACKEND_URL is set"],
    );
    let e = err(
        &[],
        &[],
        Some("[backend]\nurl = \"https://api.example.com\"\n"),
    );
    assert_mentions(&e, &["API_KEY (backend.api_key) is required"]);
    // An API key without a URL is simply unused: file mode.
    let s = load_with(&[], &[("API_KEY", API_KEY)], None).unwrap();
    assert_eq!(s.backend, None);
}

#[test]
fn bad_backend_url_is_named() {
    for url in [
        "ftp://api.example.com",
        "api.example.com",
        "https://",
        "https://a.example/?x=1",
    ] {
        let e = err(&[], &[("BACKEND_URL", url), ("API_KEY", "k")], None);
        assert_mentions(&e, &["BACKEND_URL", "backend.url", "http://", "https://"]);
    }
    let e = err(
        &[],
        &[],
        Some("[backend]\nurl = \"nope\"\napi_key = \"k\"\n"),
    );
    assert_mentions(&e, &["backend.url (BACKEND_URL)", "test.toml"]);
    // Credentials in the URL are refused without repeating them.
    let e = err(
        &[],
        &[
            ("BACKEND_URL", "https://admin:s3cr3t-in-url@api.example.com"),
            ("API_KEY", "k"),
        ],
        None,
    );
    assert_mentions(
        &e,
        &[
            "BACKEND_URL",
            "backend.url",
            "user name or password",
            "API_KEY",
        ],
    );
    assert!(!e.contains("s3cr3t-in-url"), "{e}");
}

#[test]
fn providers_in_backend_mode_are_refused() {
    let e = err(
        &[],
        &[("BACKEND_URL", "https://api.example.com"), ("API_KEY", "k")],
        Some(CONTRACT_EXAMPLE),
    );
    assert_mentions(&e, &["[[providers]]", "BACKEND_URL", "test.toml"]);
}

#[test]
fn secrets_never_appear_in_errors() {
    let e = err(&[], &[("API_KEY", "ak-with\nnewline-SECRETVALUE")], None);
    assert_mentions(&e, &["API_KEY (backend.api_key)", "control character"]);
    assert!(!e.contains("SECRETVALUE"), "{e}");
    let e = err(&[], &[], Some("[admin]\ntoken = 123456789\n"));
    assert_mentions(
        &e,
        &["admin.token: invalid type: integer, expected a string"],
    );
    assert!(!e.contains("123456789"), "{e}");
    let e = err(
        &[],
        &[],
        Some("[[providers]]\nid = \"p\"\npassword = 987654321\n"),
    );
    assert_mentions(
        &e,
        &["providers[0].password: invalid type: integer, expected a string"],
    );
    assert!(!e.contains("987654321"), "{e}");
}

#[test]
fn secrets_are_trimmed() {
    let s = load_with(
        &[],
        &[
            ("BACKEND_URL", "https://api.example.com"),
            ("API_KEY", "  key\n"),
            ("ADMIN_TOKEN", "tok\n"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(s.backend.unwrap().api_key.expose(), "key");
    assert_eq!(s.admin.token.unwrap().expose(), "tok");
}

// ---------------------------------------------------------------- providers, routing

#[test]
fn providers_are_read_from_the_contract_example() {
    let s = load_with(&[], &[], Some(CONTRACT_EXAMPLE)).unwrap();
    assert_eq!(s.backend, None);
    assert_eq!(s.sip.public_address.as_deref(), Some("203.0.113.10"));
    assert_eq!(
        s.providers,
        vec![ProviderSpec {
            id: "wavoip-main".into(),
            name: "WaVoIP".into(),
            host: "sipv2.wavoip.com".into(),
            port: Some(5060),
            transport: Some("udp".into()),
            username: "W81b8ea99dd62".into(),
            password: Secret::new(PASSWORD),
            auth_username: Some("W81b8ea99dd62".into()),
            realm: Some("sipv2.wavoip.com".into()),
            expires: Some(3600),
            outbound_proxy: Some("sip:proxy.example:5060".into()),
            enabled: Some(true),
            problem: None,
        }]
    );
    assert!(s.providers[0].validate().is_ok());
    assert_eq!(
        s.routing.default_domain.as_deref(),
        Some("my-project.sip.livekit.cloud")
    );
    assert_eq!(
        s.routing.dids.get("+5511999990000").map(String::as_str),
        Some("sip:+5511999990000@other.sip.livekit.cloud;transport=tcp")
    );
}

#[test]
fn provider_semantics_are_left_to_sip_core() {
    // Missing host, port out of range, unknown transport: loaded as written, so sip-core
    // can report each bad provider as failed while the good ones register.
    let toml = r#"
        [[providers]]
        id = "good"
        host = "sip.example.com"
        username = "u"
        password = "p"

        [[providers]]
        id = "no-host"
        username = "u"

        [[providers]]
        id = "bad-port"
        host = "sip.example.com"
        username = "u"
        port = 70000
        transport = "carrier-pigeon"
    "#;
    let s = load_with(&[], &[], Some(toml)).unwrap();
    assert_eq!(s.providers.len(), 3);
    assert_eq!(s.providers[1].host, "");
    assert_eq!(s.providers[2].port, Some(70000));
    assert_eq!(s.providers[2].transport.as_deref(), Some("carrier-pigeon"));
    assert!(s.providers[0].validate().is_ok());
    assert!(s.providers[1].validate().is_err());
    assert!(s.providers[2].validate().is_err());
}

#[test]
fn provider_type_errors_name_the_key() {
    let toml = r#"
        [[providers]]
        id = "a"
        [[providers]]
        id = "b"
        [[providers]]
        id = "c"
        port = "x"
    "#;
    let e = err(&[], &[], Some(toml));
    assert_mentions(
        &e,
        &[
            "test.toml",
            "providers[2].port: invalid type: string \"x\", expected an integer",
            "\"c\"",
        ],
    );
    let e = err(&[], &[], Some("[[providers]]\nenabled = \"yes\"\n"));
    assert_mentions(
        &e,
        &["providers[0].enabled: invalid type: string \"yes\", expected true or false"],
    );
    let e = err(&[], &[], Some("[[providers]]\nexpires = 1.5\n"));
    assert_mentions(
        &e,
        &["providers[0].expires: invalid type: float 1.5, expected an integer"],
    );
    let e = err(&[], &[], Some("providers = [1]\n"));
    assert_mentions(
        &e,
        &["providers[0]: invalid type: integer 1, expected a table"],
    );
}

#[test]
fn bad_did_destination_is_named() {
    let e = err(&[], &[], Some("[routing.dids]\n\"+5511\" = \"http://x\"\n"));
    assert_mentions(&e, &["routing.dids.\"+5511\"", "\"http://x\"", "SIP URI"]);
}

// ---------------------------------------------------------------- redaction, check-config

fn everything_secret() -> Settings {
    let toml = CONTRACT_EXAMPLE
        .replace("[sip]", &format!("[admin]\ntoken = \"{TOKEN}\"\n[sip]"))
        .replace(
            "[routing.dids]",
            &format!(
                "auth_username = \"lk-user\"\nauth_password = \"{LIVEKIT_PASSWORD}\"\n[routing.dids]"
            ),
        );
    let mut s = load_with(&[], &[], Some(&toml)).unwrap();
    s.backend = Some(BackendSettings {
        url: "https://api.example.com".into(),
        api_key: Secret::new(API_KEY),
        sync_interval: Duration::from_secs(300),
        request_timeout: Duration::from_secs(5),
    });
    s
}

#[test]
fn secrets_never_appear_in_debug_or_redacted_toml() {
    let s = everything_secret();
    for text in [format!("{s:?}"), format!("{s:#?}"), s.redacted_toml()] {
        for secret in [PASSWORD, API_KEY, TOKEN, LIVEKIT_PASSWORD] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
    let out = s.redacted_toml();
    assert_mentions(
        &out,
        &[
            "api_key = \"<redacted>\"",
            "token = \"<redacted>\"",
            "password = \"<redacted>\"",
            "auth_password = \"<redacted>\"",
        ],
    );
    assert!(s.calls.destination_auth.is_some());
}

#[test]
fn check_config_output_shows_the_effective_configuration() {
    let s = load_with(
        &["--sip-port", "5090"],
        &[("LOG_LEVEL", "30"), ("RTP_ENGINE", "127.0.0.1:22222")],
        Some(CONTRACT_EXAMPLE),
    )
    .unwrap();
    let out = s.redacted_toml();
    assert!(
        out.starts_with("# trunkline effective configuration (secrets redacted)\n"),
        "{out}"
    );
    assert_mentions(
        &out,
        &[
            "# mode: file, 1 provider(s) from [[providers]]",
            "# admin API: http://127.0.0.1:8080",
            "shutdown_grace = \"5s\"",
            "[sip]",
            "port = 5090",
            "listen_address = \"0.0.0.0\"",
            "public_address = \"203.0.113.10\"",
            "socket_buffer = 4194304",
            "[routing]",
            "default_domain = \"my-project.sip.livekit.cloud\"",
            "[routing.dids]",
            "\"+5511999990000\" = \"sip:+5511999990000@other.sip.livekit.cloud;transport=tcp\"",
            "[media]",
            "rtpengine = \"127.0.0.1:22222\"",
            "[admin]",
            "listen = \"127.0.0.1:8080\"",
            "[log]",
            "level = \"info\"",
            "format = \"auto\"",
            "[status]",
            "file = \"trunkline-status.json\"",
            "[[providers]]",
            "id = \"wavoip-main\"",
            "password = \"<redacted>\"",
            "outbound_proxy = \"sip:proxy.example:5060\"",
        ],
    );
    assert!(!out.contains("[backend]"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");

    let backend = everything_secret().redacted_toml();
    assert_mentions(
        &backend,
        &[
            "# mode: backend, providers are fetched from https://api.example.com every 5m",
            "[backend]",
            "sync_interval = \"5m\"",
        ],
    );
}

#[test]
fn redacted_toml_loads_back_to_the_same_settings() {
    let mut s = load_with(
        &[],
        &[
            ("SIP_SOCKET_BUFFER", "1MiB"),
            ("LOG_FORMAT", "json"),
            ("STATE_FILE", "state.json"),
        ],
        Some(CONTRACT_EXAMPLE),
    )
    .unwrap();
    let again = load_with(&[], &[], Some(&s.redacted_toml())).unwrap();
    for p in &mut s.providers {
        p.password = Secret::new("<redacted>");
    }
    assert_eq!(again, s);

    let mut b = everything_secret();
    b.providers.clear();
    let again = load_with(&[], &[], Some(&b.redacted_toml())).unwrap();
    b.backend.as_mut().unwrap().api_key = Secret::new("<redacted>");
    b.admin.token = Some(Secret::new("<redacted>"));
    b.calls.destination_auth.as_mut().unwrap().password = Secret::new("<redacted>");
    assert_eq!(again, b);
}

#[test]
fn admin_local_url_replaces_wildcards_with_loopback() {
    let mut a = AdminSettings::default();
    assert_eq!(a.local_url(), "http://127.0.0.1:8080");
    a.listen = "0.0.0.0:9000".parse().unwrap();
    assert_eq!(a.local_url(), "http://127.0.0.1:9000");
    a.listen = "[::]:9000".parse().unwrap();
    assert_eq!(a.local_url(), "http://[::1]:9000");
    a.listen = "10.1.2.3:9000".parse().unwrap();
    assert_eq!(a.local_url(), "http://10.1.2.3:9000");
}

// ---------------------------------------------------------------- calls (CONTRACT.md §6)

const LIVEKIT_PASSWORD: &str = "lk-5d1a-DESTINATION-PASSWORD";

fn net(text: &str) -> ipnet::IpNet {
    text.parse().unwrap()
}

#[test]
fn call_settings_default_as_the_contract_says() {
    let c = load_with(&[], &[], None).unwrap().calls;
    assert_eq!(c, CallSettings::default());
    assert!(c.allowed_sources.is_empty());
    assert_eq!(c.reject_unknown, sip_core::RejectUnknown::Forbidden);
    assert_eq!(c.destination_auth, None);
    assert_eq!(c.ring_timeout, Duration::from_secs(60));
    assert_eq!(c.max_duration, Duration::from_secs(4 * 3600));
    assert_eq!(c.max_calls, None);
    assert_eq!(c.max_calls_per_provider, None);
    assert_eq!(c.drain, Duration::from_secs(30));
    // A file that names the section but sets nothing changes nothing either.
    let c = load_with(&[], &[], Some("[calls]\n[sip]\nallowed_sources = []\n"))
        .unwrap()
        .calls;
    assert_eq!(c, CallSettings::default());
}

#[test]
fn call_settings_from_the_environment() {
    let env = [
        ("SIP_ALLOWED_SOURCES", "127.0.0.0/8, ::1,127.0.0.2/32,"),
        ("SIP_REJECT_UNKNOWN", "drop"),
        ("LIVEKIT_SIP_USERNAME", "lk-user"),
        ("LIVEKIT_SIP_PASSWORD", LIVEKIT_PASSWORD),
        ("CALL_RING_TIMEOUT", "45s"),
        ("CALL_MAX_DURATION", "2h"),
        ("MAX_CALLS", "500"),
        ("MAX_CALLS_PER_PROVIDER", "50"),
        ("CALL_DRAIN", "2m"),
    ];
    let c = load_with(&[], &env, None).unwrap().calls;
    assert_eq!(
        c.allowed_sources,
        vec![net("127.0.0.0/8"), net("::1/128"), net("127.0.0.2/32")],
        "a bare IP is one address; the trailing comma is ignored"
    );
    assert_eq!(c.reject_unknown, sip_core::RejectUnknown::Drop);
    let auth = c.destination_auth.unwrap();
    assert_eq!(auth.username, "lk-user");
    assert_eq!(auth.password.expose(), LIVEKIT_PASSWORD);
    assert_eq!(c.ring_timeout, Duration::from_secs(45));
    assert_eq!(c.max_duration, Duration::from_secs(7200));
    assert_eq!(c.max_calls, Some(500));
    assert_eq!(c.max_calls_per_provider, Some(50));
    assert_eq!(c.drain, Duration::from_secs(120));

    // 0 is no limit, as the contract says, and empty values are unset.
    let env = [
        ("MAX_CALLS", "0"),
        ("MAX_CALLS_PER_PROVIDER", "0"),
        ("SIP_ALLOWED_SOURCES", " "),
        ("LIVEKIT_SIP_USERNAME", ""),
        ("CALL_DRAIN", "0"),
    ];
    let c = load_with(&[], &env, None).unwrap().calls;
    assert_eq!((c.max_calls, c.max_calls_per_provider), (None, None));
    assert!(c.allowed_sources.is_empty());
    assert_eq!(c.destination_auth, None);
    assert_eq!(c.drain, Duration::ZERO);
}

const CALLS_FILE: &str = r#"
[sip]
allowed_sources = ["127.0.0.0/8", "::1"]
reject_unknown = 403
[routing]
auth_username = "file-user"
auth_password = "lk-5d1a-DESTINATION-PASSWORD"
[calls]
ring_timeout = "20s"
max_duration = "1h"
max_calls = 100
max_calls_per_provider = "10"
drain = 90
"#;

#[test]
fn call_settings_from_the_file() {
    let c = load_with(&[], &[], Some(CALLS_FILE)).unwrap().calls;
    assert_eq!(c.allowed_sources, vec![net("127.0.0.0/8"), net("::1/128")]);
    assert_eq!(c.reject_unknown, sip_core::RejectUnknown::Forbidden);
    let auth = c.destination_auth.unwrap();
    assert_eq!(auth.username, "file-user");
    assert_eq!(auth.password.expose(), LIVEKIT_PASSWORD);
    assert_eq!(c.ring_timeout, Duration::from_secs(20));
    assert_eq!(c.max_duration, Duration::from_secs(3600));
    assert_eq!(c.max_calls, Some(100));
    assert_eq!(c.max_calls_per_provider, Some(10));
    assert_eq!(c.drain, Duration::from_secs(90));

    // One comma-separated string works in the file as it does in the environment.
    let c = load_with(
        &[],
        &[],
        Some("[sip]\nallowed_sources = \"127.0.0.1, ::1/128\"\nreject_unknown = \"drop\"\n"),
    )
    .unwrap()
    .calls;
    assert_eq!(c.allowed_sources, vec![net("127.0.0.1/32"), net("::1/128")]);
    assert_eq!(c.reject_unknown, sip_core::RejectUnknown::Drop);
}

#[test]
fn call_settings_env_beats_file() {
    let env = [
        ("SIP_ALLOWED_SOURCES", "127.0.0.9"),
        ("SIP_REJECT_UNKNOWN", "drop"),
        ("LIVEKIT_SIP_USERNAME", "env-user"),
        ("LIVEKIT_SIP_PASSWORD", "env-password"),
        ("CALL_RING_TIMEOUT", "30s"),
        ("CALL_MAX_DURATION", "3h"),
        ("MAX_CALLS", "0"),
        ("MAX_CALLS_PER_PROVIDER", "3"),
        ("CALL_DRAIN", "5s"),
    ];
    let c = load_with(&[], &env, Some(CALLS_FILE)).unwrap().calls;
    assert_eq!(c.allowed_sources, vec![net("127.0.0.9/32")]);
    assert_eq!(c.reject_unknown, sip_core::RejectUnknown::Drop);
    let auth = c.destination_auth.unwrap();
    assert_eq!(auth.username, "env-user");
    assert_eq!(auth.password.expose(), "env-password");
    assert_eq!(c.ring_timeout, Duration::from_secs(30));
    assert_eq!(c.max_duration, Duration::from_secs(3 * 3600));
    assert_eq!(c.max_calls, None, "MAX_CALLS=0 lifts the file's limit");
    assert_eq!(c.max_calls_per_provider, Some(3));
    assert_eq!(c.drain, Duration::from_secs(5));

    // Each of the pair is resolved on its own: the password may come from the
    // environment (a secret store) while the username is in the file.
    let c = load_with(
        &[],
        &[("LIVEKIT_SIP_PASSWORD", "env-password")],
        Some(CALLS_FILE),
    )
    .unwrap()
    .calls;
    let auth = c.destination_auth.unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.password.expose()),
        ("file-user", "env-password")
    );
}

#[test]
fn call_durations_and_limits_are_bounded() {
    for (env, key, value, range) in [
        (
            "CALL_RING_TIMEOUT",
            "calls.ring_timeout",
            "500ms",
            "from 1s to 10m",
        ),
        (
            "CALL_RING_TIMEOUT",
            "calls.ring_timeout",
            "11m",
            "from 1s to 10m",
        ),
        (
            "CALL_MAX_DURATION",
            "calls.max_duration",
            "30s",
            "from 1m to 7days",
        ),
        (
            "CALL_MAX_DURATION",
            "calls.max_duration",
            "8days",
            "from 1m to 7days",
        ),
        ("CALL_DRAIN", "calls.drain", "2h", "at most 1h"),
        ("CALL_DRAIN", "calls.drain", "soon", "such as 300s"),
    ] {
        let e = err(&[], &[(env, value)], None);
        assert_mentions(
            &e,
            &[env, key, &format!("{value:?}"), range, "in the environment"],
        );
    }
    let at_bounds = [
        ("CALL_RING_TIMEOUT", "1s"),
        ("CALL_MAX_DURATION", "7days"),
        ("CALL_DRAIN", "1h"),
        ("MAX_CALLS", "1000000"),
        ("MAX_CALLS_PER_PROVIDER", "1000000"),
    ];
    let c = load_with(&[], &at_bounds, None).unwrap().calls;
    assert_eq!(c.ring_timeout, Duration::from_secs(1));
    assert_eq!(c.max_duration, Duration::from_secs(7 * 86_400));
    assert_eq!(c.drain, Duration::from_secs(3600));
    assert_eq!(c.max_calls, Some(1_000_000));

    for (env, key) in [
        ("MAX_CALLS", "calls.max_calls"),
        ("MAX_CALLS_PER_PROVIDER", "calls.max_calls_per_provider"),
    ] {
        for value in ["-1", "1000001", "ten"] {
            let e = err(&[], &[(env, value)], None);
            assert_mentions(&e, &[env, key, "0 = no limit", "from 0 to 1000000"]);
        }
    }
    let e = err(&[], &[], Some("[calls]\nmax_calls = 2.5\n"));
    assert_mentions(&e, &["calls.max_calls (MAX_CALLS)", "test.toml", "\"2.5\""]);
    let e = err(&[], &[], Some("[calls]\nring_timout = \"5s\"\n"));
    assert_mentions(&e, &["calls.ring_timout", "did you mean `ring_timeout`"]);
}

#[test]
fn reject_unknown_is_403_or_drop_from_any_source() {
    let e = err(&[], &[("SIP_REJECT_UNKNOWN", "404")], None);
    assert_mentions(
        &e,
        &[
            "SIP_REJECT_UNKNOWN (sip.reject_unknown)",
            "\"404\"",
            "403",
            "drop",
        ],
    );
    let e = err(&[], &[], Some("[sip]\nreject_unknown = \"ignore\"\n"));
    assert_mentions(&e, &["sip.reject_unknown", "test.toml", "\"ignore\""]);
}

#[test]
fn a_bad_allowed_source_names_the_entry_and_shows_an_example() {
    let e = err(
        &[],
        &[("SIP_ALLOWED_SOURCES", "127.0.0.0/8,not-an-address,::1")],
        None,
    );
    assert_mentions(
        &e,
        &[
            "SIP_ALLOWED_SOURCES (sip.allowed_sources), entry 2 of 3,",
            "\"not-an-address\"",
            "in the environment",
            "such as 127.0.0.0/8 or ::1/128",
            "/32",
        ],
    );
    let e = err(&[], &[("SIP_ALLOWED_SOURCES", "127.0.0.1/8")], None);
    assert_mentions(
        &e,
        &[
            "entry 1 of 1",
            "\"127.0.0.1/8\"",
            "write 127.0.0.0/8 for the whole network or 127.0.0.1/32",
        ],
    );
    let e = err(
        &[],
        &[],
        Some("[sip]\nallowed_sources = [\"::1\", \"::1/200\"]\n"),
    );
    assert_mentions(
        &e,
        &[
            "sip.allowed_sources (SIP_ALLOWED_SOURCES), entry 2 of 2,",
            "test.toml",
        ],
    );
    let e = err(&[], &[], Some("[sip]\nallowed_sources = [\"::1\", 127]\n"));
    assert_mentions(
        &e,
        &["sip.allowed_sources[1]: invalid type: integer 127, expected a string such as \"127.0.0.0/8\" or \"::1\""],
    );
    let e = err(&[], &[], Some("[sip]\nallowed_sources = { a = 1 }\n"));
    assert_mentions(&e, &["sip.allowed_sources", "invalid type: table"]);
    // The environment wins over a file entry that would not parse.
    let s = load_with(
        &[],
        &[("SIP_ALLOWED_SOURCES", "::1")],
        Some("[sip]\nallowed_sources = [\"bad\"]\n"),
    )
    .unwrap();
    assert_eq!(s.calls.allowed_sources, vec![net("::1/128")]);
}

#[test]
fn destination_credentials_need_both_halves() {
    let e = err(&[], &[("LIVEKIT_SIP_USERNAME", "lk-user")], None);
    assert_mentions(
        &e,
        &[
            "LIVEKIT_SIP_USERNAME (routing.auth_username) is set but \
             LIVEKIT_SIP_PASSWORD (routing.auth_password) is not",
            "set LIVEKIT_SIP_PASSWORD (routing.auth_password) as well",
        ],
    );
    let e = err(
        &[],
        &[],
        Some(&format!(
            "[routing]\nauth_password = \"{LIVEKIT_PASSWORD}\"\n"
        )),
    );
    assert_mentions(
        &e,
        &["LIVEKIT_SIP_PASSWORD (routing.auth_password) is set but \
             LIVEKIT_SIP_USERNAME (routing.auth_username) is not"],
    );
    assert!(!e.contains(LIVEKIT_PASSWORD), "{e}");

    let e = err(
        &[],
        &[
            ("LIVEKIT_SIP_USERNAME", "lk-user"),
            ("LIVEKIT_SIP_PASSWORD", "lk-with\rDESTINATION-SECRET"),
        ],
        None,
    );
    assert_mentions(
        &e,
        &[
            "LIVEKIT_SIP_PASSWORD (routing.auth_password)",
            "control character",
        ],
    );
    assert!(!e.contains("DESTINATION-SECRET"), "{e}");
    let e = err(&[], &[], Some("[routing]\nauth_password = 424242424\n"));
    assert_mentions(
        &e,
        &["routing.auth_password: invalid type: integer, expected a string"],
    );
    assert!(!e.contains("424242424"), "{e}");
    let e = err(
        &[],
        &[
            ("LIVEKIT_SIP_USERNAME", "lk\nuser"),
            ("LIVEKIT_SIP_PASSWORD", "p"),
        ],
        None,
    );
    assert_mentions(
        &e,
        &[
            "LIVEKIT_SIP_USERNAME (routing.auth_username)",
            "control characters",
        ],
    );
}

#[test]
fn check_config_shows_the_call_settings_with_the_password_redacted() {
    let s = load_with(&[], &[], Some(CALLS_FILE)).unwrap();
    let out = s.redacted_toml();
    assert_mentions(
        &out,
        &[
            "allowed_sources = [\"127.0.0.0/8\", \"::1/128\"]",
            "reject_unknown = \"403\"",
            "auth_username = \"file-user\"",
            "auth_password = \"<redacted>\"",
            "[calls]",
            "ring_timeout = \"20s\"",
            "max_duration = \"1h\"",
            "max_calls = 100",
            "max_calls_per_provider = 10",
            "drain = \"1m 30s\"",
        ],
    );
    assert!(!out.contains(LIVEKIT_PASSWORD), "{out}");
    assert!(!out.contains("admits INVITEs from every address"), "{out}");

    let defaults = Settings::default().redacted_toml();
    assert_mentions(
        &defaults,
        &[
            "allowed_sources = []",
            "max_calls = 0",
            "max_calls_per_provider = 0",
            "ring_timeout = \"1m\"",
            "max_duration = \"4h\"",
            "drain = \"30s\"",
        ],
    );
    assert!(!defaults.contains("auth_password"), "{defaults}");

    let open = load_with(&[], &[("SIP_ALLOWED_SOURCES", "0.0.0.0/0")], None).unwrap();
    assert_mentions(
        &open.redacted_toml(),
        &["# sip.allowed_sources: 0.0.0.0/0 admits INVITEs from every address of its family"],
    );

    // What check-config prints loads back to the same call settings, password aside.
    let again = load_with(&[], &[], Some(&out)).unwrap();
    let mut expected = s.calls.clone();
    if let Some(auth) = &mut expected.destination_auth {
        auth.password = Secret::new("<redacted>");
    }
    assert_eq!(again.calls, expected);
}

#[test]
fn the_core_gets_the_call_settings() {
    let s = load_with(&[], &[], Some(CALLS_FILE)).unwrap();
    let core = crate::app::core_config(&s, 5060);
    assert_eq!(core.calls, s.calls);
    assert_eq!(core.calls.max_calls_per_provider, Some(10));
}

#[test]
fn transport_settings_of_contract_section_7() {
    // Defaults: keep-alives every 30 s, no TLS files.
    let s = load_with(&[], &[], None).unwrap();
    assert_eq!(s.sip.keepalive_interval, Some(Duration::from_secs(30)));
    assert_eq!(s.sip.tls, TlsFiles::default());
    // The [sip.tls] table, and 0 turning keep-alives off.
    let file = "[sip]\nkeepalive_interval = \"0s\"\n\n[sip.tls]\ncert_file = \"/etc/t/cert.pem\"\n\
                key_file = \"/etc/t/key.pem\"\nca_file = \"/etc/t/ca.pem\"\n";
    let s = load_with(&[], &[], Some(file)).unwrap();
    assert_eq!(s.sip.keepalive_interval, None);
    assert_eq!(
        s.sip.tls.cert_file.as_deref(),
        Some(Path::new("/etc/t/cert.pem"))
    );
    assert_eq!(
        s.sip.tls.key_file.as_deref(),
        Some(Path::new("/etc/t/key.pem"))
    );
    assert_eq!(
        s.sip.tls.ca_file.as_deref(),
        Some(Path::new("/etc/t/ca.pem"))
    );
    // The environment wins, as everywhere.
    let env = [
        ("SIP_KEEPALIVE_INTERVAL", "45s"),
        ("SIP_TLS_CA_FILE", "/env/ca.pem"),
    ];
    let s = load_with(&[], &env, Some(file)).unwrap();
    assert_eq!(s.sip.keepalive_interval, Some(Duration::from_secs(45)));
    assert_eq!(s.sip.tls.ca_file.as_deref(), Some(Path::new("/env/ca.pem")));
    // Out of range, and an unknown key of [sip.tls], say which.
    let e = err(&[], &[("SIP_KEEPALIVE_INTERVAL", "2h")], None);
    assert_mentions(&e, &["SIP_KEEPALIVE_INTERVAL", "sip.keepalive_interval"]);
    let e = err(&[], &[], Some("[sip.tls]\ncertificate = \"x\"\n"));
    assert_mentions(&e, &["sip.tls.certificate", "cert_file"]);
}

#[test]
fn dns_server_of_contract_section_7() {
    // Default: the system's resolver configuration.
    let s = load_with(&[], &[], None).unwrap();
    assert_eq!(s.dns.server, None);
    assert!(s.redacted_toml().contains("# dns.server: not set"));
    // ip:port, an address alone meaning port 53, IPv6 with or without brackets.
    for (text, want) in [
        ("127.0.0.1:5353", "127.0.0.1:5353"),
        ("10.0.0.2", "10.0.0.2:53"),
        (" 10.0.0.2 ", "10.0.0.2:53"),
        ("[::1]:5353", "[::1]:5353"),
        ("::1", "[::1]:53"),
        ("[2001:db8::53]", "[2001:db8::53]:53"),
    ] {
        let s = load_with(&[], &[("DNS_SERVER", text)], None).unwrap();
        assert_eq!(s.dns.server, Some(want.parse().unwrap()), "{text}");
    }
    // The [dns] table; the environment wins over it; empty counts as unset.
    let file = "[dns]\nserver = \"127.0.0.1:5300\"\n";
    let s = load_with(&[], &[], Some(file)).unwrap();
    assert_eq!(s.dns.server, Some("127.0.0.1:5300".parse().unwrap()));
    let s = load_with(&[], &[("DNS_SERVER", "127.0.0.2")], Some(file)).unwrap();
    assert_eq!(s.dns.server, Some("127.0.0.2:53".parse().unwrap()));
    let s = load_with(&[], &[("DNS_SERVER", " ")], None).unwrap();
    assert_eq!(s.dns.server, None);
    // Bad values name the setting and say what is expected.
    for bad in [
        "dns.example.com",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "[127.0.0.1]",
        "[::1",
        "1.2.3",
        "udp://10.0.0.2",
        "10.0.0.2:53,10.0.0.3:53",
    ] {
        let e = err(&[], &[("DNS_SERVER", bad)], None);
        assert_mentions(
            &e,
            &[
                "DNS_SERVER (dns.server)",
                "in the environment",
                "the IP address of a DNS server",
                "[2001:db8::53]:5353",
            ],
        );
    }
    let e = err(&[], &[], Some("[dns]\nserver = \"resolver.lan\"\n"));
    assert_mentions(
        &e,
        &[
            "dns.server (DNS_SERVER)",
            "test.toml",
            "resolver.lan",
            "not a host name",
        ],
    );
    let e = err(&[], &[], Some("[dns]\nservr = \"10.0.0.2\"\n"));
    assert_mentions(&e, &["dns.servr", "did you mean `server`"]);
    // check-config shows it, and what it shows loads back.
    let s = load_with(&[], &[("DNS_SERVER", "[::1]:5353")], None).unwrap();
    let out = s.redacted_toml();
    assert!(out.contains("[dns]\nserver = \"[::1]:5353\"\n"), "{out}");
    assert_eq!(load_with(&[], &[], Some(&out)).unwrap().dns, s.dns);
}
