//! The admin HTTP API (CONTRACT.md §4): probes, metrics, the registrations, and two
//! orders (re-register one provider, resync); and, beyond the contract, a routing
//! check (`GET /api/destinations/{did}`: where a call to that DID would go now, through
//! the same lookup, cache and fallback as a call).
//!
//! The server runs in its own task and owns no state: every answer comes from the
//! driver, which answers between two mutations of the core (see
//! [`crate::driver::AdminCall`]), so a page never mixes two moments.
//!
//! Reads (`GET`) are open and the two `POST`s need the bearer token when one is
//! configured: Kubernetes probes and Prometheus scrape without credentials, and the
//! registrations hold no secret; what changes state is what needs protecting.
//!
//! The connections are bounded (see [`server`]): a cap taken from the descriptor budget
//! ([`fd_budget`]), a header-read and an idle keep-alive timeout.

mod activity;
mod auth;
mod error;
pub mod fd_budget;
pub mod metrics;
mod server;
pub mod view;

pub use error::ApiError;

use crate::driver::{AdminCall, Snapshot};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use sip_core::{Command, NoRoute, Route, Secret};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use view::{CallJson, RegistrationJson};

/// How long a handler waits for the driver. The driver answers between two events,
/// so this is only reached when it is stuck or flooded; a probe must then fail rather
/// than hang.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// How long a routing check waits: the core answers within `routing.lookup_timeout`
/// (at most 30 s), so this bound only trips when the driver is stuck.
const ROUTE_ANSWER_LIMIT: Duration = Duration::from_secs(40);

/// What every handler shares: the way to the driver, and the token.
#[derive(Clone)]
pub struct AdminState {
    calls: mpsc::Sender<AdminCall>,
    token: Option<Arc<Secret>>,
}

impl AdminState {
    /// Handlers send their calls on `calls`; `token`, when set, guards the `POST`s.
    pub fn new(calls: mpsc::Sender<AdminCall>, token: Option<Secret>) -> Self {
        Self {
            calls,
            token: token.map(Arc::new),
        }
    }

    async fn send(&self, call: AdminCall) -> Result<(), ApiError> {
        match tokio::time::timeout(ANSWER_LIMIT, self.calls.send(call)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ApiError::ControllerGone),
            Err(_) => Err(ApiError::ControllerBusy(ANSWER_LIMIT)),
        }
    }

    async fn snapshot(&self) -> Result<Snapshot, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(AdminCall::Snapshot(reply)).await?;
        wait(answer, ANSWER_LIMIT).await
    }

    async fn destination(&self, did: String) -> Result<Result<Route, NoRoute>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(AdminCall::Destination { did, reply }).await?;
        wait(answer, ROUTE_ANSWER_LIMIT).await
    }
}

async fn wait<T>(answer: oneshot::Receiver<T>, limit: Duration) -> Result<T, ApiError> {
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(value)) => Ok(value),
        // The driver dropped the question: it stopped between taking and answering.
        Ok(Err(_)) => Err(ApiError::ControllerGone),
        Err(_) => Err(ApiError::ControllerBusy(limit)),
    }
}

/// The routes of CONTRACT.md §4.
pub fn router(state: AdminState) -> Router {
    let mutating = Router::new()
        .route("/api/registrations/{id}/register", post(reregister))
        .route("/api/sync", post(resync))
        .route("/api/calls/{id}", delete(hang_up))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/registrations", get(registrations))
        .route("/api/destinations/{did}", get(destination))
        .route("/api/calls", get(calls))
        .merge(mutating)
        .with_state(state)
}

/// Serves the admin API on `listener` until the runtime stops, with at most
/// `max_connections` connections open (see [`fd_budget::admin_connection_cap`]).
pub async fn serve(listener: TcpListener, state: AdminState, max_connections: usize) {
    server::serve(
        listener,
        router(state),
        server::Limits::with_cap(max_connections),
    )
    .await;
}

/// Alive as long as this task can answer: it does not depend on the driver.
async fn healthz() -> &'static str {
    "ok"
}

/// Ready once the SIP socket is bound (it is before this server starts) and the first
/// provider list has been applied; not ready again once a shutdown has begun, so a
/// load balancer stops sending calls to a process that is un-registering.
async fn readyz(State(state): State<AdminState>) -> Response {
    match state.snapshot().await {
        Ok(s) if s.shutting_down => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down (un-registering and delivering final statuses)",
        )
            .into_response(),
        Ok(s) if s.synced => (StatusCode::OK, "ready").into_response(),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first provider list has not been applied yet; trunkline's log \
             says why the fetch is failing (check BACKEND_URL, API_KEY and the backend)",
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    match state.snapshot().await {
        Ok(s) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&s.registrations, s.calls.len(), &s.stats),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn registrations(
    State(state): State<AdminState>,
) -> Result<Json<Vec<RegistrationJson>>, ApiError> {
    let s = state.snapshot().await?;
    Ok(Json(
        s.registrations.iter().map(RegistrationJson::from).collect(),
    ))
}

/// Where a call to `did` would go now, and why: `fixed` (routing.dids), `backend`,
/// `default` (the backend has no entry, or file mode) or `fallback` (the backend failed;
/// trunkline's log says how).
async fn destination(
    State(state): State<AdminState>,
    Path(did): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let route = state
        .destination(did.clone())
        .await?
        .map_err(ApiError::NoRoute)?;
    Ok(Json(serde_json::json!({
        "did": did,
        "destinationUri": route.uri,
        "source": route.source.as_str(),
        "cached": route.cached,
    })))
}

async fn reregister(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // The core ignores an unknown id silently; the caller deserves a 404 instead.
    let snapshot = state.snapshot().await?;
    let Some(known) = snapshot.registrations.iter().find(|r| r.id == id) else {
        return Err(ApiError::UnknownId(id));
    };
    tracing::info!(provider_id = %id, provider_name = %known.name, "admin: re-register requested");
    state
        .send(AdminCall::Command(Command::Reregister { id: id.clone() }))
        .await?;
    Ok(accepted(
        serde_json::json!({ "accepted": "register", "id": id }),
    ))
}

async fn resync(State(state): State<AdminState>) -> Result<Response, ApiError> {
    tracing::info!("admin: provider-list sync requested");
    state.send(AdminCall::Command(Command::Resync)).await?;
    Ok(accepted(serde_json::json!({ "accepted": "sync" })))
}

/// `GET /api/calls`: the calls in progress (CONTRACT.md §6).
async fn calls(State(state): State<AdminState>) -> Result<Json<Vec<CallJson>>, ApiError> {
    let s = state.snapshot().await?;
    Ok(Json(s.calls.iter().map(CallJson::from).collect()))
}

/// `DELETE /api/calls/{id}`: hangs the call up on both legs.
async fn hang_up(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot().await?;
    let Some(call) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| snapshot.calls.iter().find(|c| c.id == n))
    else {
        return Err(ApiError::UnknownCall(id));
    };
    tracing::info!(call = call.id, did = %call.did, "admin: hang-up requested");
    state
        .send(AdminCall::Command(Command::HangUp { id: call.id }))
        .await?;
    Ok(accepted(
        serde_json::json!({ "accepted": "hangup", "id": id }),
    ))
}

/// 202: the order is queued to the core, which carries it out asynchronously.
fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

#[cfg(test)]
mod tests;
