//! Cloudflare's v4 JSON envelope: `{success, errors, messages, result, result_info}`.
//!
//! Every API reply, success or failure, goes through here so the shapes stay
//! what the `cloudflare` crate (and any other v4 client) expects.

use axum::extract::{FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// One entry of `errors` (or of an `error_chain`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorItem {
    pub code: u32,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_chain: Vec<ErrorItem>,
}

/// An API failure: HTTP status plus Cloudflare's error list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
    /// Seconds, sent as `Retry-After` (rate limiting).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            errors: vec![ErrorItem {
                code,
                message: message.into(),
                error_chain: Vec::new(),
            }],
            retry_after: None,
        }
    }

    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A DNS validation failure: code 1004 with the specific reason chained,
    /// the way Cloudflare reports bad record input.
    pub fn validation(code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            errors: vec![ErrorItem {
                code: 1004,
                message: "DNS Validation Error".into(),
                error_chain: vec![ErrorItem {
                    code,
                    message: message.into(),
                    error_chain: Vec::new(),
                }],
            }],
            retry_after: None,
        }
    }

    /// Every code in the reply, chained ones included (for tests and logs).
    pub fn codes(&self) -> Vec<u32> {
        fn walk(items: &[ErrorItem], out: &mut Vec<u32>) {
            for i in items {
                out.push(i.code);
                walk(&i.error_chain, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.errors, &mut out);
        out
    }

    /// Unknown zone: 7003, as Cloudflare answers for an identifier it cannot route.
    pub fn zone_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            7003,
            format!("Could not route to {path}, perhaps your object identifier is invalid?"),
        )
    }

    pub fn record_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 81044, "Record does not exist.")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 10002, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "errors": self.errors,
            "messages": [],
            "result": null,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A request body that must be a JSON object; Cloudflare's 9207 when it
/// is not JSON or not an object.
pub fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(9207, format!("Request body is invalid: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            9207,
            "Request body is invalid: expected a JSON object",
        )),
    }
}

/// Path parameters whose rejection is Cloudflare's 7003 in the envelope
/// instead of axum's plain text — e.g. an id that percent-decodes to
/// invalid UTF-8 (`/dns_records/%a0`).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ApiPath(t)),
            Err(_) => Err(ApiError::zone_not_found(parts.uri.path())),
        }
    }
}

/// `result_info` for a paginated list.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ResultInfo {
    pub page: usize,
    pub per_page: usize,
    pub count: usize,
    pub total_count: usize,
    pub total_pages: usize,
}

/// A successful reply with one result.
pub fn ok(result: Value) -> Response {
    ok_with(StatusCode::OK, result, None, Vec::new())
}

/// A successful reply with a page of results.
pub fn ok_list(results: Vec<Value>, info: ResultInfo) -> Response {
    ok_with(
        StatusCode::OK,
        Value::Array(results),
        Some(info),
        Vec::new(),
    )
}

pub fn ok_with(
    status: StatusCode,
    result: Value,
    info: Option<ResultInfo>,
    messages: Vec<Value>,
) -> Response {
    let mut body = json!({
        "success": true,
        "errors": [],
        "messages": messages,
        "result": result,
    });
    if let (Some(info), Some(obj)) = (info, body.as_object_mut()) {
        obj.insert("result_info".into(), json!(info));
    }
    (status, axum::Json(body)).into_response()
}

/// Slices one page out of `items`; `page` is 1-based, past the end is empty.
pub fn paginate<T>(items: Vec<T>, page: usize, per_page: usize) -> (Vec<T>, ResultInfo) {
    let total_count = items.len();
    let total_pages = total_count.div_ceil(per_page.max(1));
    let start = (page.saturating_sub(1)).saturating_mul(per_page);
    let slice: Vec<T> = items.into_iter().skip(start).take(per_page).collect();
    let info = ResultInfo {
        page,
        per_page,
        count: slice.len(),
        total_count,
        total_pages,
    };
    (slice, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_counts() {
        let (p, i) = paginate((0..12).collect::<Vec<_>>(), 2, 5);
        assert_eq!(p, vec![5, 6, 7, 8, 9]);
        assert_eq!((i.count, i.total_count, i.total_pages), (5, 12, 3));
        let (p, i) = paginate((0..12).collect::<Vec<_>>(), 4, 5);
        assert!(p.is_empty());
        assert_eq!(i.count, 0);
        let (_, i) = paginate(Vec::<u8>::new(), 1, 5);
        assert_eq!(i.total_pages, 0);
    }

    #[test]
    fn validation_error_chains_the_reason() {
        let e = ApiError::validation(9005, "bad");
        assert_eq!(e.codes(), vec![1004, 9005]);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
