//! The backend, as meaning: provider-list fetches, the status outbox, and the pure
//! mapping of both onto HTTP that every driver shares.

pub mod client;
pub mod destination;
pub mod http;
pub mod outbox;

/// After the backend refused our API key (401/403), no backend call — provider list,
/// config, status report — is retried sooner than this: someone has to fix the key,
/// and hammering the backend with a wrong one helps nobody.
pub const API_KEY_RETRY: std::time::Duration = std::time::Duration::from_secs(60);
