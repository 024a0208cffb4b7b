//! Reading the TOML config file into raw values, checking its shape: unknown keys and
//! wrong TOML types are errors that name the full key.
//!
//! The file is walked by hand rather than deserialized with serde so that every message
//! carries the full key path (`providers[2].port`, `sip.prot`) in trunkline's words,
//! and so that a password of the wrong type is reported without echoing it.

use super::error::ConfigError;
use super::keys::{self, Origin, PROVIDER_FIELDS, ROUTING_DIDS, SECTIONS};
use super::parse;
use sip_core::provider::ProviderSpec;
use sip_core::secret::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Value;

/// What the config file says, before precedence is applied.
#[derive(Debug, Default)]
pub(crate) struct FileConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Scalar settings by config-file key (`sip.port`), as written.
    pub values: BTreeMap<&'static str, Value>,
    /// `[routing.dids]`, checked.
    pub dids: BTreeMap<String, String>,
    /// `[[providers]]`, raw: their semantics are checked by sip-core, provider by provider.
    pub providers: Vec<ProviderSpec>,
}

/// Reads and checks the config file at `path`.
pub(crate) fn read(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::ReadFile {
        path: path.to_owned(),
        reason,
    })?;
    parse_text(path, &text)
}

/// Checks the text of a config file; `path` is for messages.
pub(crate) fn parse_text(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let mut out = FileConfig {
        path: path.to_owned(),
        ..FileConfig::default()
    };
    for (name, value) in table {
        match name.as_str() {
            "providers" => out.providers = read_providers(path, value)?,
            "shutdown_grace" => {
                out.values.insert(keys::SHUTDOWN_GRACE.file, value);
            }
            section if SECTIONS.contains(&section) => {
                read_section(path, section, value, &mut out)?;
            }
            _ => {
                let mut valid: Vec<&str> = SECTIONS.to_vec();
                valid.extend(["shutdown_grace", "providers"]);
                return Err(unknown_key(path, name.clone(), &name, &valid));
            }
        }
    }
    Ok(out)
}

fn read_section(
    path: &Path,
    section: &str,
    value: Value,
    out: &mut FileConfig,
) -> Result<(), ConfigError> {
    let table = match value {
        Value::Table(t) => t,
        other => {
            return Err(wrong_type(
                path,
                section.to_owned(),
                &other,
                &format!("a table ([{section}] section)"),
                true,
            ))
        }
    };
    for (name, value) in table {
        let full = format!("{section}.{name}");
        let nested = keys::ALL
            .iter()
            .any(|k| k.file.starts_with(&format!("{full}.")));
        if let (true, Value::Table(_)) = (nested, &value) {
            // A table of its own, e.g. [sip.tls]: its keys are `sip.tls.*`.
            read_section(path, &full, value, out)?;
        } else if full == ROUTING_DIDS {
            out.dids = read_dids(path, value)?;
        } else if let Some(key) = keys::ALL.iter().find(|k| k.file == full) {
            out.values.insert(key.file, value);
        } else {
            let mut valid: Vec<&str> = keys::ALL
                .iter()
                .filter_map(|k| k.file.strip_prefix(section)?.strip_prefix('.'))
                .collect();
            if section == "routing" {
                valid.push("dids");
            }
            return Err(unknown_key(path, full, &name, &valid));
        }
    }
    Ok(())
}

fn read_dids(path: &Path, value: Value) -> Result<BTreeMap<String, String>, ConfigError> {
    let table = match value {
        Value::Table(t) => t,
        other => {
            return Err(wrong_type(
                path,
                ROUTING_DIDS.to_owned(),
                &other,
                "a table of DID = \"sip:…\" entries ([routing.dids] section)",
                true,
            ))
        }
    };
    let mut dids = BTreeMap::new();
    for (did, dest) in table {
        let key = format!("{ROUTING_DIDS}.{did:?}");
        if did.trim().is_empty() || did.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::Invalid {
                names: ROUTING_DIDS.to_owned(),
                origin: Origin::File(path.to_owned()).describe(),
                value: format!("{did:?}"),
                expected: "a DID without spaces or control characters as the key, such as \
                           \"+5511999990000\""
                    .to_owned(),
            });
        }
        let text = match dest {
            Value::String(s) => s,
            other => return Err(wrong_type(path, key, &other, "a string (a SIP URI)", true)),
        };
        let uri = parse::sip_uri(&text).map_err(|expected| ConfigError::Invalid {
            names: key.clone(),
            origin: Origin::File(path.to_owned()).describe(),
            value: super::quote(&text),
            expected,
        })?;
        dids.insert(did, uri);
    }
    Ok(dids)
}

fn read_providers(path: &Path, value: Value) -> Result<Vec<ProviderSpec>, ConfigError> {
    let items = match value {
        Value::Array(items) => items,
        other => {
            return Err(wrong_type(
                path,
                "providers".to_owned(),
                &other,
                "an array of tables ([[providers]] sections)",
                true,
            ))
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| read_provider(path, index, item))
        .collect()
}

/// One `[[providers]]` entry, its fields read with their TOML types checked. Missing
/// fields are left empty for sip-core to report, so one incomplete provider does not stop
/// the others from registering.
fn read_provider(path: &Path, index: usize, item: Value) -> Result<ProviderSpec, ConfigError> {
    let prefix = format!("providers[{index}]");
    let table = match item {
        Value::Table(t) => t,
        other => {
            return Err(wrong_type(
                path,
                prefix,
                &other,
                "a table ([[providers]] section)",
                true,
            ))
        }
    };
    if let Some(name) = table
        .keys()
        .find(|k| !PROVIDER_FIELDS.contains(&k.as_str()))
    {
        return Err(unknown_key(
            path,
            format!("{prefix}.{name}"),
            name,
            PROVIDER_FIELDS,
        ));
    }
    let entry = Entry {
        path,
        prefix: &prefix,
        table: &table,
        id: table.get("id").and_then(Value::as_str),
    };
    Ok(ProviderSpec {
        id: entry.string("id", false)?.unwrap_or_default(),
        name: entry.string("name", false)?.unwrap_or_default(),
        host: entry.string("host", false)?.unwrap_or_default(),
        port: entry.integer("port")?,
        transport: entry.string("transport", false)?,
        username: entry.string("username", false)?.unwrap_or_default(),
        password: Secret::new(entry.string("password", true)?.unwrap_or_default()),
        auth_username: entry.string("auth_username", false)?,
        realm: entry.string("realm", false)?,
        expires: entry.integer("expires")?,
        outbound_proxy: entry.string("outbound_proxy", false)?,
        enabled: entry.boolean("enabled")?,
        problem: None,
    })
}

/// One provider table, for typed field access with precise messages.
struct Entry<'a> {
    path: &'a Path,
    prefix: &'a str,
    table: &'a toml::Table,
    id: Option<&'a str>,
}

impl Entry<'_> {
    fn error(&self, field: &str, value: &Value, expected: &str, show: bool) -> ConfigError {
        let mut e = wrong_type(
            self.path,
            format!("{}.{field}", self.prefix),
            value,
            expected,
            show,
        );
        if let (ConfigError::WrongType { message, .. }, Some(id)) = (&mut e, self.id) {
            message.push_str(&format!(" (provider id {id:?})"));
        }
        e
    }

    fn string(&self, field: &str, secret: bool) -> Result<Option<String>, ConfigError> {
        match self.table.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(field, other, "a string", !secret)),
        }
    }

    fn integer(&self, field: &str) -> Result<Option<i64>, ConfigError> {
        match self.table.get(field) {
            None => Ok(None),
            Some(Value::Integer(n)) => Ok(Some(*n)),
            Some(other) => Err(self.error(field, other, "an integer", true)),
        }
    }

    fn boolean(&self, field: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.get(field) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(field, other, "true or false", true)),
        }
    }
}

/// `string "x"`, `integer 5`, `table`, … as in serde's messages; with `show` false the
/// value itself is left out (secrets).
pub(crate) fn describe(value: &Value, show: bool) -> String {
    let (kind, shown) = match value {
        Value::String(s) => ("string", super::quote(s)),
        Value::Integer(n) => ("integer", n.to_string()),
        Value::Float(f) => ("float", f.to_string()),
        Value::Boolean(b) => ("boolean", b.to_string()),
        Value::Datetime(d) => ("datetime", d.to_string()),
        Value::Array(_) => return "array".to_owned(),
        Value::Table(_) => return "table".to_owned(),
    };
    if show {
        format!("{kind} {shown}")
    } else {
        kind.to_owned()
    }
}

/// A `WrongType` error for `key`.
pub(crate) fn wrong_type(
    path: &Path,
    key: String,
    value: &Value,
    expected: &str,
    show: bool,
) -> ConfigError {
    ConfigError::WrongType {
        path: path.to_owned(),
        key,
        message: format!(
            "invalid type: {}, expected {expected}",
            describe(value, show)
        ),
    }
}

fn unknown_key(path: &Path, full: String, name: &str, valid: &[&str]) -> ConfigError {
    let hint = keys::suggest(name, valid.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    ConfigError::UnknownKey {
        path: path.to_owned(),
        key: full,
        hint,
        valid: valid.join(", "),
    }
}
