//! A loopback UDP flood for trunkline's SIP port: what the garbage of issue 8 looked
//! like, sent as fast as one blocking socket goes, bounded in count and in time.
//! Used by `tests/flood.rs` and by `examples/flood.rs` (`scripts/bench-flood.sh`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request line followed by 2,000 short header lines (10 KB): the case whose
    /// parse cost grew with the header count.
    Dense,
    /// Valid-looking OPTIONS requests with 200 headers (under the header limit), each
    /// with its own Call-ID and branch: they pass every cheap check.
    Requests,
    /// Responses to no request of ours, from a source that is no registrar.
    Responses,
    /// The three in turn.
    Mixed,
}

impl Kind {
    /// `dense`, `requests`, `responses` or `mixed`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "dense" => Self::Dense,
            "requests" => Self::Requests,
            "responses" => Self::Responses,
            "mixed" => Self::Mixed,
            _ => return None,
        })
    }
}

/// What a flood did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Sends the kernel refused (buffer full and the like).
    pub errors: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

/// A few distinct payloads of `kind`, cycled by [`flood`].
pub fn payloads(kind: Kind, target: SocketAddr) -> Vec<Vec<u8>> {
    let dense = || {
        let mut m = format!("OPTIONS sip:x@{target} SIP/2.0\r\n").into_bytes();
        m.extend(b"a:b\r\n".repeat(2000));
        m.extend(b"\r\n");
        m
    };
    let request = |i: usize| {
        let mut m = format!(
            "OPTIONS sip:x@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bK-flood-{i}\r\n\
             From: <sip:flood@127.0.0.2>;tag=f{i}\r\nTo: <sip:x@{target}>\r\n\
             Call-ID: flood-{i}@127.0.0.2\r\nCSeq: {i} OPTIONS\r\nMax-Forwards: 70\r\n"
        );
        for h in 0..200 {
            m.push_str(&format!("X-Flood-{h}: {i}\r\n"));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m.into_bytes()
    };
    let response = |i: usize| {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {target};branch=z9hG4bK-forged-{i}\r\n\
             From: <sip:x@{target}>;tag=a{i}\r\nTo: <sip:x@{target}>;tag=b{i}\r\n\
             Call-ID: forged-{i}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    match kind {
        Kind::Dense => vec![dense()],
        Kind::Requests => (0..64).map(request).collect(),
        Kind::Responses => (0..64).map(response).collect(),
        Kind::Mixed => vec![dense(), request(0), response(0)],
    }
}

/// Sends `kind` from `from` to `target` at `rate` datagrams per second (0: as fast as
/// the socket goes), until `max_count` datagrams, `max_time`, or `stop`, whichever comes
/// first. Loopback only: anything else is refused.
pub fn flood(
    from: SocketAddr,
    target: SocketAddr,
    kind: Kind,
    rate: u64,
    max_count: u64,
    max_time: Duration,
    stop: &AtomicBool,
) -> io::Result<Report> {
    if !from.ip().is_loopback() || !target.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the flood is for loopback only, not {from} -> {target}"),
        ));
    }
    let socket = UdpSocket::bind(from)?;
    let payloads = payloads(kind, target);
    let started = Instant::now();
    let mut report = Report::default();
    let mut i = 0usize;
    while report.sent + report.errors < max_count {
        // The clock and the flag every 1,024 sends: cheap next to a syscall each.
        if i.is_multiple_of(1024) && (started.elapsed() >= max_time || stop.load(Ordering::Relaxed))
        {
            break;
        }
        if rate > 0 && i.is_multiple_of(64) {
            // Paced: sleep off any lead over the schedule (a load generator's pacing).
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        let payload = payloads.get(i % payloads.len()).map_or(&[][..], |p| p);
        match socket.send_to(payload, target) {
            Ok(_) => report.sent += 1,
            Err(_) => report.errors += 1,
        }
        i = i.wrapping_add(1);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}
