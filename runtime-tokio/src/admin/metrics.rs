//! `GET /metrics`: the Prometheus text exposition format, version 0.0.4.

use sip_core::stats::Stats;
use sip_core::{RegisterStatus, RegistrationView};
use std::fmt::Write as _;

/// The `Content-Type` of the exposition format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every registration state, so each has a series even at zero: a dashboard or an
/// alert on `trunkline_registrations{state="failed"} > 0` must see a 0, not no data.
const STATES: [RegisterStatus; 3] = [
    RegisterStatus::Pending,
    RegisterStatus::Registered,
    RegisterStatus::Failed,
];

/// The metrics page for one consistent snapshot of the core.
pub fn render(registrations: &[RegistrationView], active_calls: usize, stats: &Stats) -> String {
    let mut page = Page::default();

    page.family(
        "trunkline_registrations",
        "gauge",
        "Provider registrations by state.",
    );
    for state in STATES {
        let count = registrations.iter().filter(|r| r.status == state).count();
        page.sample(
            "trunkline_registrations",
            &[("state", state.as_str())],
            u64::try_from(count).unwrap_or(u64::MAX),
        );
    }

    page.family(
        "trunkline_register_transactions_total",
        "counter",
        "REGISTER transactions by how they ended.",
    );
    for (outcome, count) in &stats.register_outcomes {
        page.sample(
            "trunkline_register_transactions_total",
            &[("outcome", outcome)],
            *count,
        );
    }

    page.family(
        "trunkline_backend_requests_total",
        "counter",
        "Backend API requests by operation and outcome.",
    );
    for ((op, outcome), count) in &stats.backend_requests {
        page.sample(
            "trunkline_backend_requests_total",
            &[("op", op), ("outcome", outcome)],
            *count,
        );
    }

    page.family(
        "trunkline_active_calls",
        "gauge",
        "Calls in progress through the B2BUA.",
    );
    page.sample(
        "trunkline_active_calls",
        &[],
        u64::try_from(active_calls).unwrap_or(u64::MAX),
    );
    page.family(
        "trunkline_calls_total",
        "counter",
        "Calls through the B2BUA by outcome.",
    );
    for (outcome, n) in &stats.calls {
        page.sample("trunkline_calls_total", &[("outcome", outcome)], *n);
    }
    page.family(
        "trunkline_provider_calls_total",
        "counter",
        "Calls through the B2BUA by provider id (calls attributed to one provider).",
    );
    for (provider, n) in &stats.calls_by_provider {
        page.sample(
            "trunkline_provider_calls_total",
            &[("provider_id", provider)],
            *n,
        );
    }
    page.family(
        "trunkline_call_setup_seconds",
        "histogram",
        "From the caller's INVITE to the answer, for answered calls.",
    );
    let setup = &stats.call_setup;
    let mut cumulative = 0;
    for (bound, n) in sip_core::stats::Histogram::BOUNDS.iter().zip(setup.buckets) {
        cumulative += n;
        let le = bound.to_string();
        page.sample(
            "trunkline_call_setup_seconds_bucket",
            &[("le", &le)],
            cumulative,
        );
    }
    page.sample(
        "trunkline_call_setup_seconds_bucket",
        &[("le", "+Inf")],
        setup.count,
    );
    page.sample_f64(
        "trunkline_call_setup_seconds_sum",
        setup.sum_micros as f64 / 1e6,
    );
    page.sample("trunkline_call_setup_seconds_count", &[], setup.count);

    page.family(
        "trunkline_sip_messages_total",
        "counter",
        "SIP datagrams by direction (sent ones include retransmissions).",
    );
    page.sample(
        "trunkline_sip_messages_total",
        &[("direction", "in")],
        stats.sip_in,
    );
    page.sample(
        "trunkline_sip_messages_total",
        &[("direction", "out")],
        stats.sip_out,
    );

    page.family(
        "trunkline_sip_parse_errors_total",
        "counter",
        "Received datagrams that were not usable SIP.",
    );
    page.sample("trunkline_sip_parse_errors_total", &[], stats.parse_errors);

    page.family(
        "trunkline_sip_stray_responses_total",
        "counter",
        "SIP responses that matched no transaction.",
    );
    page.sample(
        "trunkline_sip_stray_responses_total",
        &[],
        stats.stray_responses,
    );

    page.family(
        "trunkline_sip_keepalives_total",
        "counter",
        "CRLF keep-alives received (RFC 5626), ignored.",
    );
    page.sample("trunkline_sip_keepalives_total", &[], stats.keepalives);
    page.family(
        "trunkline_sip_keepalives_sent_total",
        "counter",
        "Keep-alives sent: CRLF pings on our TCP/TLS connections and OPTIONS to UDP registrars.",
    );
    page.sample(
        "trunkline_sip_keepalives_sent_total",
        &[],
        stats.keepalives_sent,
    );
    page.family(
        "trunkline_sip_connections_total",
        "counter",
        "TCP/TLS connections by event: accepted, opened (ours up), failed, closed by the peer, and refused or closed by a limit (total, per source, slow message, idle, framing, no pong), and messages dropped for a connection gone or full.",
    );
    for event in sip_core::connections::EVENT_LABELS {
        let n = stats.connections.get(event).copied().unwrap_or_default();
        page.sample("trunkline_sip_connections_total", &[("event", event)], n);
    }
    page.family(
        "trunkline_sip_stateless_answers_total",
        "counter",
        "Requests answered without a server transaction because the most server transactions were held (a flood of distinct requests).",
    );
    page.sample(
        "trunkline_sip_stateless_answers_total",
        &[],
        stats.stateless_answers,
    );

    page.family(
        "trunkline_sip_dropped_total",
        "counter",
        "Received SIP datagrams dropped unanswered, by reason (limits, unknown source, over the per-batch budget, answer larger than the request, CSeq out of range).",
    );
    for reason in sip_core::Dropped::ALL
        .iter()
        .filter(|d| **d != sip_core::Dropped::KeepAlive)
        .map(|d| d.label())
    {
        let n = stats.dropped.get(reason).copied().unwrap_or_default();
        page.sample("trunkline_sip_dropped_total", &[("reason", reason)], n);
    }

    page.out
}

/// The page being written. `write!` into a `String` cannot fail, hence the ignored
/// results.
#[derive(Default)]
struct Page {
    out: String,
}

impl Page {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label_value(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_f64(&mut self, name: &str, value: f64) {
        let _ = writeln!(self.out, "{name} {value}");
    }
}

/// A label value as the format requires: backslash, double quote and line feed
/// escaped. Label values come from the core's outcome names today, but a quote in one
/// must never break the whole page for the scraper.
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text as the format requires: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use prometheus_parse::{LineInfo, Scrape, Value};
    use std::collections::{BTreeMap, BTreeSet};

    fn reg(id: &str, status: RegisterStatus) -> RegistrationView {
        RegistrationView {
            id: id.into(),
            name: id.into(),
            status,
            error: None,
            last_register_at: None,
            expires_at: None,
            next_refresh_at: None,
            registrar: "127.0.0.1:5060".into(),
            transport: sip_core::Transport::Udp,
            target: None,
        }
    }

    fn stats() -> Stats {
        Stats {
            sip_in: 7,
            sip_out: 11,
            parse_errors: 2,
            stray_responses: 1,
            keepalives: 3,
            stateless_answers: 0,
            dropped: BTreeMap::from([("unknown_source", 9), ("over_budget", 6)]),
            register_outcomes: BTreeMap::from([("registered", 4), ("auth_failed", 1)]),
            calls: BTreeMap::from([("refused_unknown_source", 8)]),
            backend_requests: BTreeMap::from([
                (("fetch_providers", "providers"), 1),
                (("report_status", "delivered"), 5),
                (("report_status", "failed"), 2),
            ]),
            ..Stats::default()
        }
    }

    fn scrape(page: &str) -> Scrape {
        Scrape::parse(page.lines().map(|l| Ok(l.to_owned()))).unwrap()
    }

    /// The value of the one sample of `metric` whose labels are exactly `labels`.
    fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<Value> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let found: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == metric
                    && s.labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<BTreeMap<_, _>>()
                        == want
            })
            .collect();
        assert!(found.len() <= 1, "{metric}{labels:?} appears twice");
        found.first().map(|s| s.value.clone())
    }

    #[test]
    fn every_family_parses_with_its_type_and_values() {
        let regs = [
            reg("a", RegisterStatus::Registered),
            reg("b", RegisterStatus::Registered),
            reg("c", RegisterStatus::Failed),
        ];
        let page = render(&regs, 0, &stats());
        let s = scrape(&page);

        let g = |metric, labels: &[(&str, &str)]| value(&s, metric, labels);
        assert_eq!(
            g("trunkline_registrations", &[("state", "registered")]),
            Some(Value::Gauge(2.0))
        );
        assert_eq!(
            g("trunkline_registrations", &[("state", "failed")]),
            Some(Value::Gauge(1.0))
        );
        // Zero, not absent.
        assert_eq!(
            g("trunkline_registrations", &[("state", "pending")]),
            Some(Value::Gauge(0.0))
        );
        assert_eq!(
            g(
                "trunkline_register_transactions_total",
                &[("outcome", "registered")]
            ),
            Some(Value::Counter(4.0))
        );
        assert_eq!(
            g(
                "trunkline_register_transactions_total",
                &[("outcome", "auth_failed")]
            ),
            Some(Value::Counter(1.0))
        );
        assert_eq!(
            g(
                "trunkline_backend_requests_total",
                &[("op", "report_status"), ("outcome", "failed")]
            ),
            Some(Value::Counter(2.0))
        );
        assert_eq!(
            g(
                "trunkline_backend_requests_total",
                &[("op", "fetch_providers"), ("outcome", "providers")]
            ),
            Some(Value::Counter(1.0))
        );
        assert_eq!(g("trunkline_active_calls", &[]), Some(Value::Gauge(0.0)));
        assert_eq!(
            g("trunkline_sip_messages_total", &[("direction", "in")]),
            Some(Value::Counter(7.0))
        );
        assert_eq!(
            g("trunkline_sip_messages_total", &[("direction", "out")]),
            Some(Value::Counter(11.0))
        );
        assert_eq!(
            g("trunkline_sip_parse_errors_total", &[]),
            Some(Value::Counter(2.0))
        );
        assert_eq!(
            g("trunkline_sip_stray_responses_total", &[]),
            Some(Value::Counter(1.0))
        );
        assert_eq!(
            g("trunkline_sip_keepalives_total", &[]),
            Some(Value::Counter(3.0))
        );
        assert_eq!(
            g(
                "trunkline_sip_dropped_total",
                &[("reason", "unknown_source")]
            ),
            Some(Value::Counter(9.0))
        );
        assert_eq!(
            g("trunkline_sip_dropped_total", &[("reason", "over_budget")]),
            Some(Value::Counter(6.0))
        );
        assert_eq!(
            g(
                "trunkline_calls_total",
                &[("outcome", "refused_unknown_source")]
            ),
            Some(Value::Counter(8.0))
        );
        // Every reason is published, zeros included.
        assert_eq!(
            g(
                "trunkline_sip_dropped_total",
                &[("reason", "too_many_vias")]
            ),
            Some(Value::Counter(0.0))
        );
        // Only outcomes that happened have a series (outcomes come and go with the
        // B2BUA's growth; the family is documented either way).
        let outcomes = s
            .samples
            .iter()
            .filter(|sample| sample.metric == "trunkline_calls_total")
            .count();
        assert_eq!(outcomes, 1);
        for family in [
            "trunkline_registrations",
            "trunkline_register_transactions_total",
            "trunkline_backend_requests_total",
            "trunkline_active_calls",
            "trunkline_calls_total",
            "trunkline_sip_messages_total",
            "trunkline_sip_parse_errors_total",
            "trunkline_sip_keepalives_total",
            "trunkline_sip_dropped_total",
        ] {
            assert!(s.docs.contains_key(family), "no HELP for {family}:\n{page}");
        }
    }

    /// The parser skips lines it does not understand; this makes sure there are none,
    /// and that each sample follows the TYPE line of its family.
    #[test]
    fn every_line_is_understood_and_typed_before_use() {
        let page = render(&[reg("a", RegisterStatus::Pending)], 0, &stats());
        assert!(page.ends_with('\n'), "the format ends with a line feed");
        let mut typed = BTreeSet::new();
        for line in page.lines() {
            match LineInfo::parse(line) {
                LineInfo::Type { metric_name, .. } => {
                    assert!(
                        typed.insert(metric_name.clone()),
                        "{metric_name} typed twice"
                    );
                }
                LineInfo::Sample { metric_name, .. } => {
                    // A histogram's series carry suffixes of its family's name (which
                    // the parser records as `<name>_bucket`).
                    let family = ["_sum", "_count"]
                        .iter()
                        .find_map(|s| metric_name.strip_suffix(s))
                        .map(|base| format!("{base}_bucket"))
                        .filter(|f| typed.contains(f))
                        .unwrap_or_else(|| metric_name.to_string());
                    assert!(typed.contains(&family), "sample before its TYPE: {line}");
                }
                LineInfo::Doc { .. } => {}
                LineInfo::Empty | LineInfo::Ignored => panic!("line not understood: {line:?}"),
            }
        }
    }

    #[test]
    fn empty_core_still_has_every_state_and_direction() {
        let s = scrape(&render(&[], 0, &Stats::default()));
        for state in ["pending", "registered", "failed"] {
            assert_eq!(
                value(&s, "trunkline_registrations", &[("state", state)]),
                Some(Value::Gauge(0.0)),
                "{state}"
            );
        }
        for direction in ["in", "out"] {
            assert_eq!(
                value(
                    &s,
                    "trunkline_sip_messages_total",
                    &[("direction", direction)]
                ),
                Some(Value::Counter(0.0))
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        // prometheus-parse does not unescape, so the escaped form is checked as text.
        let mut st = Stats::default();
        st.register_outcomes
            .insert("odd \"quoted\" \\ path\nnext", 3);
        let page = render(&[], 0, &st);
        assert!(
            page.contains(
                "trunkline_register_transactions_total{outcome=\"odd \\\"quoted\\\" \\\\ path\\nnext\"} 3\n"
            ),
            "{page}"
        );
        assert_eq!(escape_label_value("plain"), "plain");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }
}
