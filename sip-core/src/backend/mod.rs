//! The backend, as meaning: provider-list fetches, the status outbox, and the pure
//! mapping of both onto HTTP that every driver shares.

pub mod destination;
pub mod http;
pub mod outbox;
