//! Request bodies: the JSON content type, reading a body within a limit,
//! and leaving the connection usable when a body is refused.
//!
//! A reply sent before its request's body was read leaves the rest of the
//! body in the connection. hyper then drains what has already arrived, or
//! closes the connection when more is on its way; a client that had already
//! put the connection back in its pool sends its next request into the
//! close ("connection closed before message completed" — found by fuzzing
//! `POST /orders`, after a 415 about one request in 50,000). So a refused
//! body is read and dropped, up to [`DRAIN_MAX`], before the reply; a reply
//! to a larger one says `Connection: close`, so no client reuses the
//! connection.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;

use crate::api::ApiError;

/// A refused body is still read (and dropped) up to this size, so the
/// client gets its 4xx on a connection it may reuse.
pub const DRAIN_MAX: usize = 1024 * 1024;

/// True when `Content-Type` is `application/json` (parameters allowed).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The body when it fits in `limit` bytes, else 413 (`payload_too_large`).
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = |drained: bool| {
        let e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body exceeds {limit} bytes"),
        );
        if drained {
            e
        } else {
            e.closing()
        }
    };
    if declared_over_drain_max(headers) {
        return Err(too_large(false));
    }
    match collect(body, limit).await? {
        Collected::Fits(bytes) => Ok(bytes),
        Collected::TooLarge { drained } => Err(too_large(drained)),
    }
}

/// Reads and drops the body of a request about to be refused; `error`
/// gets `Connection: close` when the body was too large to drop.
pub async fn refuse(headers: &HeaderMap, body: Body, error: ApiError) -> ApiError {
    if declared_over_drain_max(headers) {
        return error.closing();
    }
    match collect(body, 0).await {
        Ok(Collected::Fits(_) | Collected::TooLarge { drained: true }) => error,
        Ok(Collected::TooLarge { drained: false }) | Err(_) => error.closing(),
    }
}

fn declared_over_drain_max(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > DRAIN_MAX as u64)
}

enum Collected {
    Fits(Bytes),
    /// Over the limit; `drained` when it was read to its end.
    TooLarge {
        drained: bool,
    },
}

/// Reads the body, keeping it while it fits in `limit`; stops reading past
/// [`DRAIN_MAX`].
async fn collect(mut body: Body, limit: usize) -> Result<Collected, ApiError> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("reading body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > DRAIN_MAX {
                return Ok(Collected::TooLarge { drained: false });
            }
            if total <= limit {
                buf.extend_from_slice(&data);
            } else {
                buf = Vec::new();
            }
        }
    }
    Ok(if total > limit {
        Collected::TooLarge { drained: true }
    } else {
        Collected::Fits(Bytes::from(buf))
    })
}
