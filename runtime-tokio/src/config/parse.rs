//! Parsers from the text of one setting to its value. Each returns, on failure, what
//! would have been accepted: the caller adds the key's names and where the value came
//! from.

use super::{LogFormat, LogLevel};
use ipnet::IpNet;
use sip_core::RejectUnknown;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// What a parser says it expected.
pub(crate) type Expected = String;

/// A port number, 1–65535.
pub(crate) fn port(text: &str) -> Result<u16, Expected> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| "a port number from 1 to 65535".to_owned())
}

/// An IP address to bind to; `[::]` is accepted as well as `::`.
pub(crate) fn ip_addr(text: &str) -> Result<IpAddr, Expected> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    t.parse::<IpAddr>()
        .map_err(|_| "an IP address such as 0.0.0.0, 10.0.0.5 or :: (not a host name)".to_owned())
}

/// A DNS name (letters, digits, `-`, `_` in dot-separated labels) or an IP address,
/// IPv6 optionally in brackets. Nothing that could break the SIP header it goes into.
pub(crate) fn is_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A host name or IP address, without port.
pub(crate) fn host(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    if is_host(t) {
        Ok(t.to_owned())
    } else {
        Err("a host name or IP address without port or scheme, such as 203.0.113.10 or sip.example.com".to_owned())
    }
}

/// A domain name (what goes after `@` in `sip:{did}@{domain}`).
pub(crate) fn domain(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    if is_host(t) {
        Ok(t.to_owned())
    } else {
        Err("a domain such as my-project.sip.livekit.cloud, without `sip:` or a port".to_owned())
    }
}

/// `host:port` (IPv6 in brackets), returned trimmed as given.
pub(crate) fn host_port(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    // An unbracketed IPv6 address would make the port ambiguous.
    let ok = t.rsplit_once(':').is_some_and(|(h, p)| {
        port(p).is_ok() && is_host(h) && (!h.contains(':') || h.starts_with('['))
    });
    if ok {
        Ok(t.to_owned())
    } else {
        Err("host:port, such as 127.0.0.1:22222 or [::1]:22222".to_owned())
    }
}

/// A DNS server: `ip:port`, `[v6]:port`, or an address alone (`10.0.0.2`, `::1`,
/// `[::1]`) meaning port 53. Not a host name: it would need a DNS server to find.
pub(crate) fn dns_server(text: &str) -> Result<SocketAddr, Expected> {
    let t = text.trim();
    let expected = || {
        "the IP address of a DNS server, optionally with a port: 10.0.0.2, 10.0.0.2:5353, \
         2001:db8::53 or [2001:db8::53]:5353 (not a host name)"
            .to_owned()
    };
    let addr = match t.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let bare = t.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
            let ip = match bare {
                // Brackets hold IPv6 only, as in a URI.
                Some(inner) => inner.parse::<Ipv6Addr>().map(IpAddr::V6),
                None => t.parse::<IpAddr>(),
            };
            SocketAddr::new(ip.map_err(|_| expected())?, 53)
        }
    };
    if addr.port() == 0 {
        return Err(expected());
    }
    Ok(addr)
}

/// An `address:port` to listen on; `localhost:PORT` means `127.0.0.1:PORT`.
pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, Expected> {
    let t = text.trim();
    let expected = || "address:port such as 127.0.0.1:8080 or 0.0.0.0:8080".to_owned();
    if let Some(p) = t.strip_prefix("localhost:") {
        let p = p.parse::<u16>().map_err(|_| expected())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
    }
    t.parse::<SocketAddr>().map_err(|_| expected())
}

/// A duration: humantime (`300s`, `5m`, `1h 30m`) or whole seconds, within `min..=max`.
pub(crate) fn duration(text: &str, min: Duration, max: Duration) -> Result<Duration, Expected> {
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        humantime::parse_duration(t).ok()
    };
    let range = || {
        if min.is_zero() {
            format!("at most {}", humantime::format_duration(max))
        } else {
            format!(
                "from {} to {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )
        }
    };
    match d {
        Some(d) if d >= min && d <= max => Ok(d),
        Some(_) => Err(format!("a duration {}", range())),
        None => Err(format!(
            "a duration such as 300s, 5m or 1h30m, or a whole number of seconds, {}",
            range()
        )),
    }
}

/// A whole number in `min..=max`.
pub(crate) fn number_in(text: &str, min: u64, max: u64, what: &str) -> Result<u64, Expected> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{what} from {min} to {max}"))
}

/// A size in bytes: a whole number, optionally with `KiB`/`MiB` (also `K`/`M`, `KB`/`MB`,
/// all binary multiples, as socket buffer sizes are).
pub(crate) fn bytes(text: &str, min: usize, max: usize) -> Result<usize, Expected> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => 0,
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("a size in bytes from {min} to {max}, such as 4194304 or 4MiB"))
}

/// A log level name or pino number.
pub(crate) fn log_level(text: &str) -> Result<LogLevel, Expected> {
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" | "10" => Ok(LogLevel::Trace),
        "debug" | "20" => Ok(LogLevel::Debug),
        "info" | "30" => Ok(LogLevel::Info),
        "warn" | "warning" | "40" => Ok(LogLevel::Warn),
        // pino's `fatal` (60) has no tracing equivalent: error is the closest.
        "error" | "50" | "fatal" | "60" => Ok(LogLevel::Error),
        _ => Err(
            "one of trace, debug, info, warn, error, or a pino level number 10, 20, 30, 40, 50, 60"
                .to_owned(),
        ),
    }
}

/// `json`, `pretty`, or `auto` (`None`: decided by whether stdout is a terminal).
pub(crate) fn log_format(text: &str) -> Result<Option<LogFormat>, Expected> {
    match text.trim().to_ascii_lowercase().as_str() {
        "json" => Ok(Some(LogFormat::Json)),
        "pretty" | "text" => Ok(Some(LogFormat::Pretty)),
        "auto" => Ok(None),
        _ => Err("json, pretty or auto".to_owned()),
    }
}

/// The backend's base URL: `http://` or `https://`, a host, optionally a port and a
/// path; no credentials (the API key is separate), query or fragment. Trailing slashes
/// are trimmed so that paths can be appended.
pub(crate) fn backend_url(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    let expected = || {
        "an http:// or https:// URL such as https://api.example.com, without user name, \
         password, query or fragment (the key goes in API_KEY)"
            .to_owned()
    };
    let url = url::Url::parse(t).map_err(|_| expected())?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && !t.chars().any(|c| c.is_whitespace() || c.is_control());
    if !usable {
        return Err(expected());
    }
    Ok(t.trim_end_matches('/').to_owned())
}

/// Whether a URL has credentials in it, so that an error message does not repeat it.
pub(crate) fn url_has_credentials(text: &str) -> bool {
    url::Url::parse(text.trim())
        .map(|u| !u.username().is_empty() || u.password().is_some())
        .unwrap_or(false)
}

/// Text that goes into a SIP header (User-Agent): non-empty, printable.
pub(crate) fn header_text(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    if t.is_empty() || t.chars().any(char::is_control) {
        Err("non-empty text without control characters (it is sent as a SIP header)".to_owned())
    } else {
        Ok(t.to_owned())
    }
}

/// A file path.
pub(crate) fn path(text: &str) -> Result<std::path::PathBuf, Expected> {
    if text.trim().is_empty() || text.contains('\0') {
        Err("a file path".to_owned())
    } else {
        Ok(std::path::PathBuf::from(text))
    }
}

/// A destination for a DID: a `sip:` or `sips:` URI.
pub(crate) fn sip_uri(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
        .unwrap_or("");
    if rest.is_empty()
        || t.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        Err("a SIP URI such as sip:+5511999990000@my-project.sip.livekit.cloud".to_owned())
    } else {
        Ok(t.to_owned())
    }
}

/// One entry of an address allow-list: a CIDR (`127.0.0.0/8`, `::1/128`) or a bare IP
/// address, which means that one address (`/32`, or `/128` for IPv6). A CIDR with bits
/// set after its prefix (`127.0.0.1/8`) is refused rather than widened or narrowed: an
/// allow-list wider than meant lets strangers call, so the operator says which one.
pub(crate) fn cidr(text: &str) -> Result<IpNet, Expected> {
    let t = text.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    match t.parse::<IpNet>() {
        Ok(net) if net.trunc() == net => Ok(net),
        Ok(net) => Err(format!(
            "a network address: bits are set after the /{} prefix; write {} for the whole \
             network or {} for the one address",
            net.prefix_len(),
            net.trunc(),
            IpNet::from(net.addr()),
        )),
        Err(_) => Err(
            "a CIDR such as 127.0.0.0/8 or ::1/128, or a single IP address such as \
             127.0.0.1 (taken as /32, or /128 for IPv6)"
                .to_owned(),
        ),
    }
}

/// What an INVITE from an unknown source gets: `403` or `drop`.
pub(crate) fn reject_unknown(text: &str) -> Result<RejectUnknown, Expected> {
    match text.trim().to_ascii_lowercase().as_str() {
        "403" => Ok(RejectUnknown::Forbidden),
        "drop" => Ok(RejectUnknown::Drop),
        _ => Err("403 (answer 403 Forbidden) or drop (send no answer at all)".to_owned()),
    }
}

/// A concurrent-call limit from 0 to `max`; 0 means no limit (`None`).
pub(crate) fn call_limit(text: &str, max: u32) -> Result<Option<u32>, Expected> {
    let n = number_in(
        text,
        0,
        u64::from(max),
        "a number of concurrent calls (0 = no limit)",
    )?;
    // In range, so it fits; the fallback is never taken.
    let n = u32::try_from(n).unwrap_or(max);
    Ok((n != 0).then_some(n))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port("5060"), Ok(5060));
        assert_eq!(port(" 65535 "), Ok(65535));
        assert!(port("0").is_err());
        assert!(port("70000").is_err());
        assert!(port("-1").is_err());
        assert!(port("abc").is_err());
    }

    #[test]
    fn durations() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(86_400));
        assert_eq!(duration("300", min, max), Ok(Duration::from_secs(300)));
        assert_eq!(duration("300s", min, max), Ok(Duration::from_secs(300)));
        assert_eq!(duration("5m", min, max), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h 30m", min, max), Ok(Duration::from_secs(5400)));
        assert!(duration("0", min, max).is_err());
        assert!(duration("2days", min, max).is_err());
        assert!(duration("soon", min, max).is_err());
        assert!(duration("-5", min, max).is_err());
        assert!(duration("", min, max).is_err());
        assert_eq!(duration("0", Duration::ZERO, max), Ok(Duration::ZERO));
    }

    #[test]
    fn log_levels_and_pino_numbers() {
        for (text, level) in [
            ("trace", LogLevel::Trace),
            ("10", LogLevel::Trace),
            ("DEBUG", LogLevel::Debug),
            ("20", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("30", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("40", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("50", LogLevel::Error),
            ("60", LogLevel::Error),
            ("fatal", LogLevel::Error),
        ] {
            assert_eq!(log_level(text), Ok(level), "{text}");
        }
        assert!(log_level("35").is_err());
        assert!(log_level("verbose").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            backend_url("https://api.example.com/").as_deref(),
            Ok("https://api.example.com")
        );
        assert_eq!(
            backend_url("http://10.0.0.1:3000/v1//").as_deref(),
            Ok("http://10.0.0.1:3000/v1")
        );
        assert!(backend_url("ftp://api.example.com").is_err());
        assert!(backend_url("api.example.com").is_err());
        assert!(backend_url("https://user:pw@api.example.com").is_err());
        assert!(backend_url("https://api.example.com/?a=1").is_err());
        assert!(backend_url("https://").is_err());
        assert!(url_has_credentials("https://user:pw@api.example.com"));
        assert!(!url_has_credentials("https://api.example.com"));
    }

    #[test]
    fn hosts_and_addresses() {
        assert_eq!(
            host_port("127.0.0.1:22222").as_deref(),
            Ok("127.0.0.1:22222")
        );
        assert_eq!(
            host_port("rtpengine:22222").as_deref(),
            Ok("rtpengine:22222")
        );
        assert_eq!(host_port("[::1]:22222").as_deref(), Ok("[::1]:22222"));
        assert!(host_port("rtpengine").is_err());
        assert!(host_port("::1:22222").is_err());
        assert!(host_port("host:0").is_err());
        assert!(host("bad host").is_err());
        assert!(host("sip.example.com\r\nX: y").is_err());
        assert_eq!(host("203.0.113.10").as_deref(), Ok("203.0.113.10"));
        assert_eq!(
            socket_addr("localhost:9000"),
            Ok("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(socket_addr("[::]:8080"), Ok("[::]:8080".parse().unwrap()));
        assert!(socket_addr("8080").is_err());
        assert_eq!(ip_addr("[::]"), Ok("::".parse().unwrap()));
        assert!(ip_addr("localhost").is_err());
    }

    #[test]
    fn sizes() {
        let max = 1 << 30;
        assert_eq!(bytes("4194304", 1, max), Ok(4 << 20));
        assert_eq!(bytes("4MiB", 1, max), Ok(4 << 20));
        assert_eq!(bytes("512 KiB", 1, max), Ok(512 << 10));
        assert!(bytes("0", 1, max).is_err());
        assert!(bytes("4GiB", 1, max).is_err());
        assert!(bytes("lots", 1, max).is_err());
    }

    #[test]
    fn sip_uris() {
        assert!(sip_uri("sip:+5511999990000@other.sip.livekit.cloud;transport=tcp").is_ok());
        assert!(sip_uri("SIPS:a@b").is_ok());
        assert!(sip_uri("sip:").is_err());
        assert!(sip_uri("http://x").is_err());
        assert!(sip_uri("sip:a@b\r\nVia: x").is_err());
    }

    #[test]
    fn cidrs_and_bare_addresses() {
        assert_eq!(cidr("127.0.0.0/8"), Ok("127.0.0.0/8".parse().unwrap()));
        assert_eq!(cidr(" 192.0.2.0/24 "), Ok("192.0.2.0/24".parse().unwrap()));
        assert_eq!(cidr("127.0.0.1"), Ok("127.0.0.1/32".parse().unwrap()));
        assert_eq!(cidr("::1"), Ok("::1/128".parse().unwrap()));
        assert_eq!(cidr("[::1]"), Ok("::1/128".parse().unwrap()));
        assert_eq!(cidr("2001:db8::/32"), Ok("2001:db8::/32".parse().unwrap()));
        let e = cidr("127.0.0.1/8").unwrap_err();
        assert!(
            e.contains("127.0.0.0/8") && e.contains("127.0.0.1/32"),
            "{e}"
        );
        for bad in [
            "127.0.0.0/33",
            "127.0.0.300",
            "localhost",
            "127.0.0.0/",
            "/8",
            "",
        ] {
            let e = cidr(bad).unwrap_err();
            assert!(e.contains("127.0.0.0/8"), "{bad}: {e}");
        }
    }

    #[test]
    fn reject_unknown_is_403_or_drop() {
        assert_eq!(reject_unknown("403"), Ok(RejectUnknown::Forbidden));
        assert_eq!(reject_unknown(" DROP "), Ok(RejectUnknown::Drop));
        assert!(reject_unknown("404").is_err());
        assert!(reject_unknown("forbid").is_err());
    }

    #[test]
    fn call_limits_zero_is_none() {
        assert_eq!(call_limit("0", 10), Ok(None));
        assert_eq!(call_limit("10", 10), Ok(Some(10)));
        assert!(call_limit("11", 10).is_err());
        assert!(call_limit("-1", 10).is_err());
        assert!(call_limit("many", 10).unwrap_err().contains("0 = no limit"));
    }
}
