//! Bearer-token authentication, answering the way Cloudflare does:
//! no credentials → 400 (10000), a malformed header → 400 (6003 with the
//! header named in `error_chain`), an unknown token → 403 (10000), or 401
//! (1000 "Invalid API Token") on `/user/tokens/verify`.

use crate::envelope::{ApiError, ErrorItem};
use crate::secret::Secret;
use http::{HeaderMap, StatusCode};

/// The accepted tokens, each with a stable public id (never the token
/// itself) and whether it may only read (Zone:Read without DNS:Edit).
#[derive(Debug)]
pub struct Tokens {
    entries: Vec<(Secret, String, Access)>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Reads answer; a change is refused 403, as Cloudflare refuses a token
    /// without DNS:Edit.
    ReadOnly,
}

impl Tokens {
    pub fn new(tokens: &[Secret]) -> Self {
        Tokens::with_read_only(tokens, &[])
    }

    /// `tokens` may change records, `read_only` may only read them.
    pub fn with_read_only(tokens: &[Secret], read_only: &[Secret]) -> Self {
        let entry = |t: &Secret, a| (t.clone(), crate::record::new_id(), a);
        Tokens {
            entries: tokens
                .iter()
                .map(|t| entry(t, Access::ReadWrite))
                .chain(read_only.iter().map(|t| entry(t, Access::ReadOnly)))
                .collect(),
        }
    }

    /// Checks the token against the request's method: a read-only token
    /// that asks for a change gets Cloudflare's 403.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        method: &http::Method,
        verify_endpoint: bool,
    ) -> Result<&str, ApiError> {
        let (id, access) = self.find(headers, verify_endpoint)?;
        let reads = matches!(*method, http::Method::GET | http::Method::HEAD);
        if access == Access::ReadOnly && !reads {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                10000,
                "Authentication error",
            ));
        }
        Ok(id)
    }

    /// The id of the token presented, or Cloudflare's error.
    pub fn check(&self, headers: &HeaderMap, verify_endpoint: bool) -> Result<&str, ApiError> {
        self.find(headers, verify_endpoint).map(|(id, _)| id)
    }

    fn find(&self, headers: &HeaderMap, verify_endpoint: bool) -> Result<(&str, Access), ApiError> {
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
            .find(|(secret, _, _)| secret.matches(token))
        {
            Some((_, id, access)) => Ok((id, *access)),
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

    #[test]
    fn a_read_only_token_reads_but_may_not_change() {
        let t = Tokens::with_read_only(&[Secret::new("rw")], &[Secret::new("ro")]);
        let ro = headers(Some("Bearer ro"));
        assert!(t.authorize(&ro, &http::Method::GET, false).is_ok());
        assert!(t.authorize(&ro, &http::Method::GET, true).is_ok());
        for m in [
            http::Method::PATCH,
            http::Method::PUT,
            http::Method::POST,
            http::Method::DELETE,
        ] {
            let e = t.authorize(&ro, &m, false).unwrap_err();
            assert_eq!(
                (e.status, e.codes()),
                (StatusCode::FORBIDDEN, vec![10000]),
                "{m}"
            );
        }
        let rw = headers(Some("Bearer rw"));
        assert!(t.authorize(&rw, &http::Method::PATCH, false).is_ok());
    }
}
