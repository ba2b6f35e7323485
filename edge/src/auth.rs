//! Bearer-token authentication, answering the way Cloudflare does:
//! no credentials → 400 (10000), a malformed header → 400 (6003 with the
//! header named in `error_chain`), an unknown token → 403 (10000), or 401
//! (1000 "Invalid API Token") on `/user/tokens/verify`.

use crate::envelope::{ApiError, ErrorItem};
use crate::secret::Secret;
use http::{HeaderMap, StatusCode};

/// The accepted tokens, each with a stable public id (never the token itself).
#[derive(Debug)]
pub struct Tokens {
    entries: Vec<(Secret, String)>,
}

impl Tokens {
    pub fn new(tokens: &[Secret]) -> Self {
        Tokens {
            entries: tokens
                .iter()
                .map(|t| (t.clone(), crate::record::new_id()))
                .collect(),
        }
    }

    /// The id of the token presented, or Cloudflare's error.
    pub fn check(&self, headers: &HeaderMap, verify_endpoint: bool) -> Result<&str, ApiError> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            if headers.contains_key("x-auth-key") || headers.contains_key("x-auth-email") {
                return Err(invalid_header(6103, "Invalid format for X-Auth-Key header"));
            }
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                10000,
                "Authentication error",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| invalid_header(6111, "Invalid format for Authorization header"))?;
        match self
            .entries
            .iter()
            .find(|(secret, _)| secret.matches(token))
        {
            Some((_, id)) => Ok(id),
            None if verify_endpoint => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                1000,
                "Invalid API Token",
            )),
            None => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                10000,
                "Authentication error",
            )),
        }
    }
}

fn invalid_header(code: u32, message: &str) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        errors: vec![ErrorItem {
            code: 6003,
            message: "Invalid request headers".into(),
            error_chain: vec![ErrorItem {
                code,
                message: message.into(),
                error_chain: Vec::new(),
            }],
        }],
        retry_after: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn statuses_and_codes_follow_cloudflare() {
        let t = Tokens::new(&[Secret::new("tok_a")]);
        assert!(t.check(&headers(Some("Bearer tok_a")), false).is_ok());
        let e = t.check(&headers(None), false).unwrap_err();
        assert_eq!(
            (e.status, e.codes()),
            (StatusCode::BAD_REQUEST, vec![10000])
        );
        let e = t.check(&headers(Some("Basic abc")), false).unwrap_err();
        assert_eq!(e.codes(), vec![6003, 6111]);
        let e = t.check(&headers(Some("Bearer nope")), false).unwrap_err();
        assert_eq!((e.status, e.codes()), (StatusCode::FORBIDDEN, vec![10000]));
        let e = t.check(&headers(Some("Bearer nope")), true).unwrap_err();
        assert_eq!(
            (e.status, e.codes()),
            (StatusCode::UNAUTHORIZED, vec![1000])
        );
    }
}
