//! Logging to stdout: JSON lines with pino field names (`level`, `time`, `msg`) for log
//! pipelines built for the Node.js deployment trunkline replaces, or human-readable
//! lines on a terminal.

use crate::config::{LogFormat, LogLevel, LogSettings};
use serde_json::{Map, Value};
use std::fmt;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// `RUST_LOG` is set but is not a filter.
    #[error(
        "RUST_LOG={value:?} is not a valid log filter ({reason}); fix it \
         (e.g. RUST_LOG=info,trunkline=debug) or unset it and use LOG_LEVEL"
    )]
    BadRustLog {
        /// The variable's value.
        value: String,
        /// The parser's message.
        reason: String,
    },
    /// A global subscriber was installed before.
    #[error("logging is already set up ({0}); call logging::init once, at start")]
    AlreadyInitialized(String),
}

/// Dependencies whose debug output drowns trunkline's own: kept at `info` when
/// `LOG_LEVEL` is `debug` or `trace`. `RUST_LOG` can still open them up.
const NOISY: &[&str] = &[
    "h2",
    "hickory_proto",
    "hickory_resolver",
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "tower",
];

/// Installs the global subscriber: level from `settings` (or `RUST_LOG` when set, for
/// developers), JSON when the format says so or when stdout is not a terminal.
pub fn init(settings: &LogSettings) -> Result<(), LogError> {
    let filter = filter(settings.level, std::env::var("RUST_LOG").ok())?;
    let tty = std::io::stdout().is_terminal();
    let format = settings.format.unwrap_or(if tty {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let registry = tracing_subscriber::registry();
    let result = match format {
        LogFormat::Json => registry
            .with(json_layer(std::io::stdout).with_filter(filter))
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stdout)
                    .with_ansi(tty)
                    .with_filter(filter),
            )
            .try_init(),
    };
    result.map_err(|e| LogError::AlreadyInitialized(e.to_string()))
}

/// The level filter: `rust_log` when non-empty, else `level` with noisy dependencies
/// kept at `info`.
fn filter(level: LogLevel, rust_log: Option<String>) -> Result<EnvFilter, LogError> {
    if let Some(value) = rust_log.filter(|v| !v.trim().is_empty()) {
        return EnvFilter::try_new(&value).map_err(|e| LogError::BadRustLog {
            reason: e.to_string(),
            value,
        });
    }
    let mut directives = level.as_str().to_owned();
    if level <= LogLevel::Debug {
        for target in NOISY {
            directives.push_str(&format!(",{target}=info"));
        }
    }
    // Built from fixed, valid directives: the lossy constructor cannot drop anything.
    Ok(EnvFilter::new(directives))
}

/// The JSON-lines layer, writing to `writer`.
fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(PinoJson)
        .with_writer(writer)
}

/// One JSON object per line: `level`, `time` (RFC 3339, UTC, milliseconds), `msg`,
/// `target`, then the fields of the enclosing spans (outermost first, so inner spans
/// win) and of the event, flattened. tracing-subscriber's own JSON format nests fields
/// and calls the message `message`, which pino tooling does not read.
struct PinoJson;

/// Keys written by the formatter itself; event or span fields with these names are
/// written as `fields.<name>` so nothing is lost or duplicated.
const RESERVED: &[&str] = &["level", "time", "msg", "target"];

impl<S, N> FormatEvent<S, N> for PinoJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                // The span's fields were recorded as a JSON object by `JsonFields`.
                if let Some(recorded) = extensions.get::<FormattedFields<N>>() {
                    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(recorded) {
                        for (k, v) in map {
                            insert_field(&mut fields, &k, v);
                        }
                    }
                }
            }
        }
        let mut visitor = EventFields {
            fields: &mut fields,
            msg: None,
        };
        event.record(&mut visitor);
        let msg = visitor.msg.unwrap_or_default();

        // Written by hand: a serde_json map would sort the keys, and pino tooling expects
        // the fixed ones first.
        let json = |v: &str| serde_json::to_string(v).map_err(|_| fmt::Error);
        let mut out = format!(
            "{{\"level\":{},\"time\":{},\"msg\":{},\"target\":{}",
            json(level_label(*meta.level()))?,
            json(&rfc3339_now())?,
            json(&msg)?,
            json(meta.target())?,
        );
        for (key, value) in &fields {
            out.push(',');
            out.push_str(&json(key)?);
            out.push(':');
            out.push_str(&serde_json::to_string(value).map_err(|_| fmt::Error)?);
        }
        out.push('}');
        writeln!(writer, "{out}")
    }
}

fn insert_field(fields: &mut Map<String, Value>, name: &str, value: Value) {
    let name = name.strip_prefix("r#").unwrap_or(name);
    if RESERVED.contains(&name) {
        fields.insert(format!("fields.{name}"), value);
    } else {
        fields.insert(name.to_owned(), value);
    }
}

/// pino's level labels.
fn level_label(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// Now, as `2024-05-01T12:34:56.789Z`.
fn rfc3339_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Collects an event's fields; `message` becomes `msg`.
struct EventFields<'a> {
    fields: &'a mut Map<String, Value>,
    msg: Option<String>,
}

impl EventFields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.msg = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if name.starts_with("log.") {
            // `log` crate metadata bridged by tracing-log: already used for `target`.
        } else {
            insert_field(self.fields, name, value);
        }
    }
}

impl Visit for EventFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps everything in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect()
        }
    }

    /// The JSON lines `f` logs at `level` and above.
    pub(crate) fn capture(level: LogLevel, f: impl FnOnce()) -> Vec<Value> {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry()
            .with(json_layer(move || writer.clone()).with_filter(filter(level, None).unwrap()));
        tracing::subscriber::with_default(subscriber, f);
        out.lines()
    }

    fn looks_like_rfc3339_utc(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 24
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.'
            && b[23] == b'Z'
            && s.chars()
                .enumerate()
                .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
    }

    #[test]
    fn json_lines_have_pino_fields_and_flattened_span_fields() {
        let lines = capture(LogLevel::Info, || {
            let outer = tracing::info_span!("provider", provider_id = "wavoip-main", attempt = 1);
            let _o = outer.enter();
            let inner = tracing::info_span!("transaction", attempt = 2, branch = "z9hG4bK1");
            let _i = inner.enter();
            tracing::info!(
                status = "registered",
                expires = 3600u64,
                "registered with {}",
                "sipv2.example"
            );
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let l = &lines[0];
        assert_eq!(l["level"], "info");
        assert_eq!(l["msg"], "registered with sipv2.example");
        assert!(
            looks_like_rfc3339_utc(l["time"].as_str().unwrap()),
            "{}",
            l["time"]
        );
        assert_eq!(l["provider_id"], "wavoip-main");
        assert_eq!(l["branch"], "z9hG4bK1");
        assert_eq!(l["attempt"], 2, "the inner span wins");
        assert_eq!(l["status"], "registered");
        assert_eq!(l["expires"], 3600);
        assert!(l.get("message").is_none());
        assert!(l["target"].as_str().unwrap().contains("logging"));
    }

    #[test]
    fn fixed_keys_come_first_and_reserved_names_are_kept() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target = "sip:+1@x", level = 3, "odd field names");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("{\"level\":\"warn\",\"time\":"), "{text}");
        let l: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(l["level"], "warn");
        assert_eq!(l["fields.target"], "sip:+1@x");
        assert_eq!(l["fields.level"], 3);
    }

    #[test]
    fn level_filter_applies() {
        let lines = capture(LogLevel::Warn, || {
            tracing::info!("hidden");
            tracing::debug!("hidden");
            tracing::warn!("shown");
            tracing::error!(error = %io::Error::other("boom"), "failed");
        });
        let msgs: Vec<_> = lines.iter().map(|l| l["msg"].as_str().unwrap()).collect();
        assert_eq!(msgs, ["shown", "failed"]);
        assert_eq!(lines[1]["level"], "error");
        assert_eq!(lines[1]["error"], "boom");
    }

    #[test]
    fn event_without_message_has_empty_msg() {
        let lines = capture(LogLevel::Trace, || tracing::trace!(x = 1));
        assert_eq!(lines[0]["msg"], "");
        assert_eq!(lines[0]["level"], "trace");
        assert_eq!(lines[0]["x"], 1);
    }

    #[test]
    fn rust_log_overrides_and_bad_rust_log_is_named() {
        assert!(filter(LogLevel::Info, Some("debug,hyper=warn".into())).is_ok());
        assert!(filter(LogLevel::Info, Some("   ".into())).is_ok());
        let e = filter(LogLevel::Info, Some("info,[[[".into())).unwrap_err();
        assert!(e.to_string().contains("RUST_LOG"), "{e}");
        assert!(e.to_string().contains("LOG_LEVEL"), "{e}");
        let f = filter(LogLevel::Debug, None).unwrap().to_string();
        assert!(f.contains("hyper=info") && f.contains("debug"), "{f}");
    }
}
