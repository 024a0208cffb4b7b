//! The settings of inbound calls (CONTRACT.md §6, plus `calls.max_calls_per_provider`):
//! who may send INVITEs, the credentials a challenging destination gets, and the limits
//! and timers of a call, resolved into the core's [`CallSettings`].

use super::error::ConfigError;
use super::keys::{self, Key, Origin};
use super::{parse, Resolver};
use sip_core::{CallSettings, DigestCredentials};
use std::time::Duration;

// A caller hears ringing all along: a provider gives up after a few minutes at most, and
// under a second no destination could answer.
const RING_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));
// The cap ends calls that were forgotten (a lost BYE); under a minute would cut real calls
// and is most likely a unit mistake (`CALL_MAX_DURATION=4` meant as hours).
const MAX_DURATION_RANGE: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(7 * 86_400));
// A rolling deploy waits for the drain; beyond an hour it is a deploy that never ends.
const DRAIN_RANGE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(3600));
// Far above what one process can carry (each call is two dialogs and a media path), low
// enough that a typo in the digits is caught.
const MAX_CALLS_LIMIT: u32 = 1_000_000;

/// Reads every call setting; unset ones take [`CallSettings::default`].
pub(super) fn resolve(r: &Resolver<'_>) -> Result<CallSettings, ConfigError> {
    let defaults = CallSettings::default();
    let duration = |key: Key, (min, max): (Duration, Duration), default: Duration| {
        r.parse(key, |t| parse::duration(t, min, max))
            .map(|d| d.unwrap_or(default))
    };
    let limit = |key: Key| {
        r.parse(key, |t| parse::call_limit(t, MAX_CALLS_LIMIT))
            .map(Option::flatten)
    };
    Ok(CallSettings {
        allowed_sources: r
            .list(
                keys::SIP_ALLOWED_SOURCES,
                "a string such as \"127.0.0.0/8\" or \"::1\"",
                parse::cidr,
            )?
            .unwrap_or(defaults.allowed_sources),
        reject_unknown: r
            .parse(keys::SIP_REJECT_UNKNOWN, parse::reject_unknown)?
            .unwrap_or(defaults.reject_unknown),
        destination_auth: destination_auth(r)?,
        ring_timeout: duration(
            keys::CALL_RING_TIMEOUT,
            RING_TIMEOUT_RANGE,
            defaults.ring_timeout,
        )?,
        max_duration: duration(
            keys::CALL_MAX_DURATION,
            MAX_DURATION_RANGE,
            defaults.max_duration,
        )?,
        max_calls: limit(keys::MAX_CALLS)?,
        max_calls_per_provider: limit(keys::MAX_CALLS_PER_PROVIDER)?,
        drain: duration(keys::CALL_DRAIN, DRAIN_RANGE, defaults.drain)?,
    })
}

/// `routing.auth_username` and `routing.auth_password`: both or neither, since half of
/// a pair cannot answer a challenge and would only fail every call later.
fn destination_auth(r: &Resolver<'_>) -> Result<Option<DigestCredentials>, ConfigError> {
    let username = r.parse(keys::ROUTING_AUTH_USERNAME, parse::header_text)?;
    let password = r.secret(keys::ROUTING_AUTH_PASSWORD)?;
    let half = |set: Key, missing: Key| ConfigError::IncompleteCredentials {
        set: set.names(&Origin::Env),
        missing: missing.names(&Origin::Env),
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(DigestCredentials { username, password })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(half(
            keys::ROUTING_AUTH_USERNAME,
            keys::ROUTING_AUTH_PASSWORD,
        )),
        (None, Some(_)) => Err(half(
            keys::ROUTING_AUTH_PASSWORD,
            keys::ROUTING_AUTH_USERNAME,
        )),
    }
}
