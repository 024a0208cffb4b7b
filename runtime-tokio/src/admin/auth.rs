//! The bearer token of mutating admin calls.

use super::error::ApiError;
use super::AdminState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sip_core::Secret;
use subtle::ConstantTimeEq as _;

/// Middleware on the mutating routes: passes the request on when no token is
/// configured or the request carries it, answers 401 otherwise.
pub async fn require_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    match &state.token {
        Some(token) if !authorized(request.headers(), token) => {
            tracing::info!(
                method = %request.method(),
                path = request.uri().path(),
                "admin call refused: missing or wrong bearer token"
            );
            ApiError::Unauthorized.into_response()
        }
        _ => next.run(request).await,
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>`.
///
/// The comparison takes the same time wherever the first differing byte is, so the
/// token cannot be guessed byte by byte from response times (only its length could
/// be learned, which is not worth protecting).
pub fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Some((scheme, presented)) = value.as_bytes().split_first_chunk::<7>() else {
        return false;
    };
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case(b"Bearer ") {
        return false;
    }
    let presented = presented.trim_ascii();
    !token.is_empty() && bool::from(presented.ct_eq(token.expose().as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accepts_exactly_the_token_under_the_bearer_scheme() {
        let token = Secret::new("s3cret-token");
        assert!(authorized(&with("Bearer s3cret-token"), &token));
        assert!(authorized(&with("bearer s3cret-token"), &token));
        assert!(authorized(&with("Bearer  s3cret-token "), &token));
        assert!(!authorized(&HeaderMap::new(), &token));
        assert!(!authorized(&with("Bearer s3cret-toke"), &token));
        assert!(!authorized(&with("Bearer s3cret-token2"), &token));
        assert!(!authorized(&with("Bearer "), &token));
        assert!(!authorized(&with("Basic s3cret-token"), &token));
        assert!(!authorized(&with("s3cret-token"), &token));
        assert!(!authorized(&with("Bearer"), &token));
    }

    #[test]
    fn an_empty_token_authorizes_nothing() {
        assert!(!authorized(&with("Bearer "), &Secret::new("")));
    }
}
