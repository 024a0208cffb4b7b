//! The registrations as a table, like Asterisk's `pjsip show registrations`: one line
//! per provider, columns as wide as their content, a summary line at the end.

use crate::admin::view::RegistrationJson;
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Longest NAME shown without `--wide`.
const NAME_MAX: usize = 32;
/// Longest ERROR shown without `--wide`: registrar answers can be long, and one long
/// error would otherwise push every other line off the screen.
const ERROR_MAX: usize = 60;

const HEADERS: [&str; 7] = [
    "ID",
    "NAME",
    "STATUS",
    "ERROR",
    "LAST REGISTERED",
    "EXPIRES IN",
    "REGISTRAR",
];

/// The registrar, the RFC 3263 target in use when the registrar's name does not say
/// it (`sip.example.net → 192.0.2.7:5070`: after a failover, which one), and a stream
/// transport (worth a glance; UDP is the default).
fn registrar_cell(r: &RegistrationJson) -> String {
    let mut cell = r.registrar.clone();
    if let Some(target) = r.target.as_deref().filter(|t| *t != r.registrar) {
        cell.push_str(" → ");
        cell.push_str(target);
    }
    match r.transport.as_str() {
        "" | "udp" => {}
        t => cell.push_str(&format!(" ({t})")),
    }
    clean(&cell, usize::MAX)
}

/// The table for `rows` as seen at `now`; `wide` keeps long names and errors whole.
pub fn render(rows: &[RegistrationJson], now: OffsetDateTime, wide: bool) -> String {
    let limit = |max: usize| if wide { usize::MAX } else { max };
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                clean(&r.id, usize::MAX),
                clean(&r.name, limit(NAME_MAX)),
                clean(&r.status, usize::MAX),
                r.error
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |e| clean(e, limit(ERROR_MAX))),
                r.last_register_at
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), timestamp),
                expires_in(r.expires_at.as_deref(), now),
                registrar_cell(r),
            ]
        })
        .collect();

    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    line(&mut out, &HEADERS.map(str::to_owned), &widths);
    for row in &cells {
        line(&mut out, row, &widths);
    }
    let count = |status: &str| rows.iter().filter(|r| r.status == status).count();
    let _ = writeln!(
        out,
        "{} registration{}: {} registered, {} pending, {} failed",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        count("registered"),
        count("pending"),
        count("failed"),
    );
    out
}

/// The line under the table about calls: how many are in progress, and in which state.
pub fn calls_line(calls: &[crate::admin::view::CallJson]) -> String {
    let count = |state: &str| calls.iter().filter(|c| c.state == state).count();
    format!(
        "{} active call{}: {} answered, {} ringing, {} routing, {} ending\n",
        calls.len(),
        if calls.len() == 1 { "" } else { "s" },
        count("answered"),
        count("ringing"),
        count("routing"),
        count("ending"),
    )
}

/// One line, cells padded to their column's width, no trailing spaces.
fn line(out: &mut String, cells: &[String; 7], widths: &[usize; 7]) {
    let mut text = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        let _ = write!(text, "{cell:<width$}  ");
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

/// `text` on one line (control characters would break the table, and a terminal
/// must not interpret what a registrar wrote), cut to `max` characters with `…`.
fn clean(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// An RFC 3339 timestamp to the second, in UTC; shown as given when it does not parse.
fn timestamp(text: &str) -> String {
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => t
            .to_offset(time::UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .unwrap_or_else(|_| clean(text, usize::MAX)),
        Err(_) => clean(text, usize::MAX),
    }
}

/// Time left until `expires_at`, e.g. `52m10s`; `-` when unknown or already past.
fn expires_in(expires_at: Option<&str>, now: OffsetDateTime) -> String {
    let Some(at) = expires_at.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
        return "-".to_owned();
    };
    let left = (at - now).whole_seconds();
    if left <= 0 {
        return "-".to_owned();
    }
    let (h, m, s) = (left / 3600, left % 3600 / 60, left % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

    fn row(id: &str, status: &str) -> RegistrationJson {
        RegistrationJson {
            id: id.into(),
            name: format!("{id} trunk"),
            status: status.into(),
            error: None,
            last_register_at: None,
            expires_at: None,
            next_refresh_at: None,
            registrar: "sip.example.net:5060".into(),
            transport: "udp".into(),
            target: None,
        }
    }

    #[test]
    fn the_calls_line_counts_by_state() {
        let call = |state: &str| crate::admin::view::CallJson {
            id: "1".into(),
            provider_id: None,
            did: "+1555".into(),
            caller: None,
            destination: None,
            state: state.into(),
            started_at: "2026-03-01T11:07:50Z".into(),
            answered_at: None,
        };
        assert_eq!(
            calls_line(&[call("answered"), call("answered"), call("ringing")]),
            "3 active calls: 2 answered, 1 ringing, 0 routing, 0 ending\n"
        );
        assert_eq!(
            calls_line(&[]),
            "0 active calls: 0 answered, 0 ringing, 0 routing, 0 ending\n"
        );
    }

    fn rows() -> Vec<RegistrationJson> {
        let mut alice = row("wavoip-main", "registered");
        alice.name = "WaVoIP".into();
        alice.last_register_at = Some("2026-03-01T11:07:50.123Z".into());
        alice.expires_at = Some("2026-03-01T12:52:10Z".into());
        alice.next_refresh_at = Some("2026-03-01T12:40:00Z".into());
        let mut bob = row("p-bob", "failed");
        bob.error = Some(
            "authentication failed: the registrar rejected the credentials (403 Forbidden) \
             after a challenge for realm sip.example.net"
                .into(),
        );
        bob.expires_at = Some("2026-03-01T11:00:00Z".into());
        let mut carol = row("p-carol", "pending");
        carol.name = "a name that is far too long to show in full in a table".into();
        carol.error = Some("no answer\r\nfrom registrar".into());
        carol.last_register_at = Some("2026-03-01T09:00:00+02:00".into());
        carol.expires_at = Some("2026-03-01T12:00:42Z".into());
        let mut dave = row("p-dave", "registered");
        dave.last_register_at = Some("not a time".into());
        dave.expires_at = Some("2026-03-02T13:00:05Z".into());
        vec![alice, bob, carol, dave]
    }

    #[test]
    fn table() {
        insta::assert_snapshot!(render(&rows(), NOW, false));
    }

    #[test]
    fn wide_table_keeps_everything() {
        let wide = render(&rows(), NOW, true);
        assert!(wide.contains("(403 Forbidden) after a challenge for realm sip.example.net"));
        assert!(wide.contains("a name that is far too long to show in full in a table"));
        assert!(!wide.contains('…'));
    }

    #[test]
    fn empty_list_has_headers_and_a_summary() {
        insta::assert_snapshot!(render(&[], NOW, false), @r"
        ID  NAME  STATUS  ERROR  LAST REGISTERED  EXPIRES IN  REGISTRAR
        0 registrations: 0 registered, 0 pending, 0 failed
        ");
    }

    #[test]
    fn expiry_is_humanised() {
        let at = |s| expires_in(Some(s), NOW);
        assert_eq!(at("2026-03-01T12:52:10Z"), "52m10s");
        assert_eq!(at("2026-03-01T12:00:09Z"), "9s");
        assert_eq!(at("2026-03-01T13:00:00Z"), "1h00m00s");
        assert_eq!(at("2026-03-01T12:00:00Z"), "-");
        assert_eq!(at("2026-03-01T11:59:59Z"), "-");
        assert_eq!(at("garbage"), "-");
        assert_eq!(expires_in(None, NOW), "-");
    }

    #[test]
    fn the_registrar_cell_names_the_target_in_use_when_the_name_does_not() {
        let mut r = row("p", "registered");
        r.registrar = "127.0.0.1:5060".into();
        r.target = Some("127.0.0.1:5060".into());
        assert_eq!(registrar_cell(&r), "127.0.0.1:5060");
        r.registrar = "sip.example.net".into();
        r.target = Some("192.0.2.7:5070".into());
        r.transport = "tls".into();
        assert_eq!(registrar_cell(&r), "sip.example.net → 192.0.2.7:5070 (tls)");
        r.target = None;
        assert_eq!(registrar_cell(&r), "sip.example.net (tls)");
    }

    #[test]
    fn cells_are_one_line_and_cut_by_characters() {
        assert_eq!(clean("a\r\nb", 10), "a  b");
        assert_eq!(clean("ééééé", 3), "éé…");
        assert_eq!(clean("abc", 3), "abc");
    }
}
