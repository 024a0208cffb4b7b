//! Calls on the controller tape (issue 9 §3, fuzz). Call mode is on when config byte 3
//! (`reports`) has bits 7 and 5 set together, which no tape written before calls has
//! (see `regressions/controller/`): routing is on, `127.0.0.1/32` is an allowed source,
//! and the call settings come from spare config bits (see [`CallWorld::new`]).
//!
//! Then a peer's request step is a call's request — from the caller at
//! [`build::caller_addr`], from a stranger that must never be forwarded, or from the
//! destination inside one of the dialogs the core opened — and a response step whose
//! `which` byte has its top bit set answers one of the requests the core sent that is
//! no REGISTER: its INVITE to the destination (1xx, a challenge, a 2xx of one fork or
//! another, a failure), a CANCEL, a relayed BYE or re-INVITE to either side. The
//! invariants are in [`checks`].

pub mod build;
pub mod checks;

use super::ops::{ConfigPick, SipReply};
use super::pools::SECRETS;
use build::{CalleeLeg, CallerCall, CallerDialog, CALLS};
use checks::CallChecks;
use sip_core::message::{header_uri, parse, Message, Request};
use sip_core::{CallSettings, Config, Controller, DigestCredentials, RejectUnknown, Secret};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Outbound legs kept for the destination's requests.
const KEPT_LEGS: usize = 8;

/// Requests the core sent kept to answer.
const KEPT_SENT: usize = 16;

/// The destination's credentials when the config asks for them: the password is one of
/// the pool's secrets, so finding it in a datagram is a leak.
pub const DESTINATION_USER: &str = "lk-trunk";

/// The calls of a run in call mode: the dialogs as the peers see them, the requests to
/// answer, and the invariants' records.
#[derive(Debug)]
pub struct CallWorld {
    settings: CallSettings,
    callers: BTreeMap<CallerCall, CallerDialog>,
    legs: VecDeque<CalleeLeg>,
    sent: VecDeque<(Request, SocketAddr)>,
    checks: CallChecks,
}

/// `ring_timeout` picks (`sync` bits 4–5).
const RING_TIMEOUTS: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(3),
    Duration::from_secs(1),
    Duration::from_secs(170),
];

impl CallWorld {
    /// The calls of a run, when `pick` turns call mode on. Settings: the ring timeout
    /// from `sync` bits 4–5 (60 s, 3 s, 1 s, 170 s), the longest call from bit 6
    /// (4 h or 20 s); `MAX_CALLS` from `rate` bits 5–6 (none, 1, 2, none), the drain
    /// from bit 7 (30 s or 2 s); destination credentials from `backend_timeout` bit 7,
    /// and `reject_unknown = drop` from its bit 6.
    pub fn new(pick: &ConfigPick) -> Option<Self> {
        if pick.reports & 0xA0 != 0xA0 {
            return None;
        }
        let ring_timeout = RING_TIMEOUTS
            .get(usize::from((pick.sync >> 4) & 3))
            .copied()
            .unwrap_or(Duration::from_secs(60));
        let settings = CallSettings {
            allowed_sources: "127.0.0.1/32"
                .parse()
                .map(|net| vec![net])
                .unwrap_or_default(),
            reject_unknown: if pick.backend_timeout & 0x40 != 0 {
                RejectUnknown::Drop
            } else {
                RejectUnknown::Forbidden
            },
            destination_auth: (pick.backend_timeout & 0x80 != 0).then(|| DigestCredentials {
                username: DESTINATION_USER.to_owned(),
                password: Secret::new(SECRETS.get(1).copied().unwrap_or_default()),
            }),
            ring_timeout,
            max_duration: if pick.sync & 0x40 != 0 {
                Duration::from_secs(20)
            } else {
                Duration::from_secs(4 * 3600)
            },
            max_calls: match (pick.rate >> 5) & 3 {
                1 => Some(1),
                2 => Some(2),
                _ => None,
            },
            max_calls_per_provider: None,
            drain: if pick.rate & 0x80 != 0 {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(30)
            },
        };
        Some(Self {
            settings,
            callers: BTreeMap::new(),
            legs: VecDeque::new(),
            sent: VecDeque::new(),
            checks: CallChecks::default(),
        })
    }

    /// Puts the call settings into the core's configuration.
    pub fn configure(&self, cfg: &mut Config) {
        cfg.calls = self.settings.clone();
    }

    /// The request a kind byte stands for, and where it comes from: bit 7 picks the
    /// destination's side (the newest legs first, by bits 4–5), else the caller's call
    /// (bits 4–5), from the stranger when bit 6 is set; bits 0–3 pick the request.
    pub fn request(&mut self, kind: u8) -> Option<(SocketAddr, Vec<u8>)> {
        let index = (kind >> 4) & 3;
        if kind & 0x80 != 0 {
            let len = self.legs.len();
            let at = len.checked_sub(1 + usize::from(index) % len.max(1))?;
            let leg = self.legs.get_mut(at)?;
            let remote = leg.remote;
            return Some((remote, build::callee_request(leg, kind)));
        }
        let call = CallerCall {
            index: index % CALLS,
            stranger: kind & 0x40 != 0,
        };
        let dialog = self.callers.entry(call).or_default();
        Some((call.source(), build::caller_request(call, dialog, kind)))
    }

    /// The answer to the `which`-th newest request the core sent (no REGISTER, no ACK),
    /// from where it went.
    pub fn answer(&self, which: u8, reply: &SipReply) -> Option<(SocketAddr, Vec<u8>)> {
        let len = self.sent.len();
        let at = len.checked_sub(1 + usize::from(which) % len.max(1))?;
        let (req, remote) = self.sent.get(at)?;
        Some((*remote, build::call_response(req, *remote, reply)))
    }

    /// A datagram about to be delivered to the core.
    pub fn on_delivered(
        &mut self,
        remote: SocketAddr,
        payload: &[u8],
        now: Instant,
        unmutated: bool,
    ) {
        match parse(payload) {
            Ok(Message::Request(req)) => {
                self.checks
                    .delivered_request(remote.ip() == build::caller_addr().ip(), &req);
            }
            Ok(Message::Response(resp)) => {
                if let (Some(call_id), Some(tag)) = (resp.headers.call_id(), resp.headers.to_tag())
                {
                    if let Some(leg) = self.legs.iter_mut().find(|l| l.call_id == call_id) {
                        if resp.status > 100 && leg.to_tag.is_none() {
                            leg.to_tag = Some(tag.to_owned());
                        }
                    }
                }
                self.checks.delivered_response(&resp, now, unmutated);
            }
            Err(_) => {}
        }
    }

    /// A message the core sent (already parsed by the world).
    pub fn on_sent(&mut self, remote: SocketAddr, message: &Message, payload: &[u8], now: Instant) {
        match message {
            Message::Response(resp) => {
                self.checks.sent_response(resp);
                let Some(call_id) = resp.headers.call_id() else {
                    return;
                };
                let Some(dialog) = self
                    .callers
                    .iter_mut()
                    .find(|(call, _)| call.call_id() == call_id)
                    .map(|(_, d)| d)
                else {
                    return;
                };
                if let Some(tag) = resp.headers.to_tag() {
                    dialog.to_tag = Some(tag.to_owned());
                }
                if let Some(uri) = resp.headers.get("Contact").and_then(header_uri) {
                    dialog.target = Some(uri.to_owned());
                }
            }
            Message::Request(req) => {
                if req.method == "REGISTER" {
                    return;
                }
                self.checks.sent_request(req, payload, now);
                if req.method == "ACK" {
                    return;
                }
                if req.method == "INVITE" && req.headers.to_tag().is_none() {
                    self.new_leg(remote, req);
                }
                self.sent.push_back((req.clone(), remote));
                if self.sent.len() > KEPT_SENT {
                    self.sent.pop_front();
                }
            }
        }
    }

    fn new_leg(&mut self, remote: SocketAddr, req: &Request) {
        let h = &req.headers;
        let Some(call_id) = h.call_id() else {
            return;
        };
        if self.legs.iter().any(|l| l.call_id == call_id) {
            return;
        }
        self.legs.push_back(CalleeLeg {
            call_id: call_id.to_owned(),
            remote,
            from: h.get("From").unwrap_or_default().to_owned(),
            to: h.get("To").unwrap_or_default().to_owned(),
            target: h
                .get("Contact")
                .and_then(header_uri)
                .unwrap_or("sip:127.0.0.1:5060")
                .to_owned(),
            to_tag: None,
            next_cseq: 100,
            reinvite_cseq: None,
        });
        if self.legs.len() > KEPT_LEGS {
            self.legs.pop_front();
        }
    }

    /// The end-of-run checks, once the shutdown has completed.
    pub fn at_end(&self, core: &Controller) {
        self.checks.at_end(core);
    }
}
