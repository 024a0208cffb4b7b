//! Errors of the admin API: each is answered with its status code and a JSON body
//! `{"error": "…"}` that says what is wrong and what to do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

/// Why an admin call was not carried out. Messages never contain the token or any
/// other secret: the caller's `Authorization` header is not echoed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A mutating call without the right bearer token.
    #[error(
        "missing or wrong bearer token: this call changes state and needs \
         `Authorization: Bearer <token>` with the token trunkline was started with \
         (ADMIN_TOKEN or admin.token)"
    )]
    Unauthorized,
    /// No registration has this id.
    #[error("no registration with id {0:?}; GET /api/registrations lists the ids")]
    UnknownId(String),
    /// No call in progress has this id.
    #[error("no call in progress with id {0:?}; GET /api/calls lists them")]
    UnknownCall(String),
    /// The DID cannot be routed (not dialable, or no destination and no default).
    #[error("{0}")]
    NoRoute(sip_core::NoRoute),
    /// The driver has stopped: trunkline is shutting down.
    #[error("the controller is not running (trunkline is shutting down); try again once it has restarted")]
    ControllerGone,
    /// The driver did not take or answer the call in time.
    #[error(
        "the controller did not answer within {0:?}; it may be overloaded, see trunkline's log"
    )]
    ControllerBusy(Duration),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnknownId(_) | Self::UnknownCall(_) => StatusCode::NOT_FOUND,
            Self::NoRoute(sip_core::NoRoute::BadDid { .. }) => StatusCode::BAD_REQUEST,
            Self::NoRoute(sip_core::NoRoute::NoDefault { .. }) => StatusCode::NOT_FOUND,
            Self::ControllerGone | Self::ControllerBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        let mut response = (status, body).into_response();
        if matches!(self, Self::Unauthorized) {
            // RFC 6750 §3: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trunkline\""),
            );
        }
        response
    }
}
