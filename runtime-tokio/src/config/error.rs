//! Configuration errors: each names the offending key and says what is expected.

use std::path::PathBuf;
use thiserror::Error;

/// Why the configuration cannot be used. The message is meant for the operator as is:
/// it names the key (config key and environment variable, and flag where there is one)
/// and says what would be accepted. Secret values are never part of a message.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error(
        "cannot read config file {} (given by --config or TRUNKLINE_CONFIG): {reason}; \
         check the path and its permissions",
        path.display()
    )]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error; kept in the message rather than as a `source`
        /// so that printing the error alone tells the whole story.
        reason: std::io::Error,
    },

    /// The config file is not TOML.
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },

    /// A key in the config file that trunkline does not know: most often a typo.
    #[error(
        "config file {}: unknown key `{key}`{hint}; valid keys here are: {valid}",
        path.display()
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The full dotted key, e.g. `sip.prot` or `providers[1].pasword`.
        key: String,
        /// `; did you mean …?`, or empty.
        hint: String,
        /// The keys accepted at that place.
        valid: String,
    },

    /// A value in the config file has the wrong TOML type.
    #[error("config file {}: {key}: {message}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The full dotted key, e.g. `providers[2].port`.
        key: String,
        /// `invalid type: string "x", expected an integer`.
        message: String,
    },

    /// A value that cannot be used, from any source.
    #[error("invalid value {value} for {names} {origin}: expected {expected}")]
    Invalid {
        /// Every name of the setting, the one used first, e.g. `SIP_PORT (sip.port, --sip-port)`.
        names: String,
        /// Where the value came from: `in the environment`, `in config file X`, ….
        origin: String,
        /// The value as given, quoted (never a secret).
        value: String,
        /// What would be accepted.
        expected: String,
    },

    /// A secret that cannot be used; its value is not shown.
    #[error("{names} {origin} {problem}")]
    InvalidSecret {
        /// Every name of the setting, the one used first.
        names: String,
        /// Where the value came from.
        origin: String,
        /// What is wrong and what to do.
        problem: String,
    },

    /// Backend mode without an API key.
    #[error(
        "API_KEY (backend.api_key) is required when BACKEND_URL is set: set the API_KEY \
         environment variable or backend.api_key in the config file, or unset BACKEND_URL \
         (backend.url) to use file mode"
    )]
    MissingApiKey,

    /// One half of a pair of credentials (`routing.auth_username` without
    /// `routing.auth_password`, or the reverse).
    #[error(
        "{set} is set but {missing} is not: a destination that challenges our INVITE \
         needs both; set {missing} as well, or unset {set} if the destination asks for no \
         credentials"
    )]
    IncompleteCredentials {
        /// The names of the setting that is set, e.g. `LIVEKIT_SIP_USERNAME (routing.auth_username)`.
        set: String,
        /// The names of the one that is missing.
        missing: String,
    },

    /// Providers listed in the file while the backend is the source of providers.
    #[error(
        "config file {}: [[providers]] are not used when BACKEND_URL (backend.url) is set, \
         because backend mode fetches providers from the backend; remove the [[providers]] \
         entries or unset BACKEND_URL to use file mode",
        path.display()
    )]
    ProvidersInBackendMode {
        /// The file.
        path: PathBuf,
    },
}
