//! Injected API failures, so the migrator's retry logic meets real 429s and 5xxs.

use crate::envelope::ApiError;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// "Answer the next `count` API calls with `status`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// 429, 500, 502 or 503.
    pub status: u16,
    pub count: u32,
    /// Seconds for `Retry-After`; 429 defaults to 1.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Only calls with this method consume the fault (e.g. `"PATCH"`); any when absent.
    #[serde(default)]
    pub method: Option<String>,
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.status, 429 | 500 | 502 | 503) {
            return Err(format!(
                "status {} is not injectable (429, 500, 502, 503)",
                self.status
            ));
        }
        if let Some(m) = &self.method {
            if http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_err() {
                return Err(format!("method {m:?} is not an HTTP method"));
            }
        }
        Ok(())
    }

    fn error(&self) -> ApiError {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut err = match self.status {
            429 => ApiError::new(
                status,
                971,
                "Please wait and consider throttling your request speed",
            ),
            503 => ApiError::new(status, 10003, "Service temporarily unavailable"),
            502 => ApiError::new(status, 10004, "Bad gateway"),
            _ => ApiError::new(status, 10002, "An unknown error has occurred"),
        };
        err.retry_after = match self.status {
            429 => Some(self.retry_after.unwrap_or(1)),
            _ => self.retry_after,
        };
        err
    }
}

/// What is armed now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStatus {
    pub armed: Option<FaultSpec>,
    /// Calls still to fail.
    pub remaining: u32,
    /// Calls failed on purpose since start.
    pub injected_total: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultStatus>,
}

impl Faults {
    pub fn new(initial: Option<FaultSpec>) -> Self {
        let f = Faults::default();
        if let Some(spec) = initial {
            f.arm(spec);
        }
        f
    }

    /// Replaces whatever was armed. `count = 0` disarms.
    pub fn arm(&self, spec: FaultSpec) {
        let mut s = self.lock();
        s.remaining = spec.count;
        s.armed = (spec.count > 0).then_some(spec);
    }

    pub fn clear(&self) {
        let mut s = self.lock();
        s.armed = None;
        s.remaining = 0;
    }

    pub fn status(&self) -> FaultStatus {
        self.lock().clone()
    }

    /// Consumes one armed failure if it applies to this call.
    pub fn take(&self, method: &http::Method) -> Option<ApiError> {
        let mut s = self.lock();
        let spec = s.armed.clone()?;
        if let Some(m) = &spec.method {
            if !m.eq_ignore_ascii_case(method.as_str()) {
                return None;
            }
        }
        s.remaining = s.remaining.saturating_sub(1);
        s.injected_total += 1;
        if s.remaining == 0 {
            s.armed = None;
        }
        Some(spec.error())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultStatus> {
        // A poisoned lock only means a panic elsewhere; the data is still a plain value.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_exactly_count_calls_then_passes() {
        let f = Faults::new(Some(FaultSpec {
            status: 429,
            count: 2,
            retry_after: None,
            method: Some("patch".into()),
        }));
        assert!(f.take(&http::Method::GET).is_none(), "GET is not targeted");
        let e = f.take(&http::Method::PATCH).expect("first");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(1));
        assert!(f.take(&http::Method::PATCH).is_some());
        assert!(f.take(&http::Method::PATCH).is_none());
        assert_eq!(f.status().injected_total, 2);
    }

    #[test]
    fn only_server_errors_and_429_are_injectable() {
        let spec = |status| FaultSpec {
            status,
            count: 1,
            retry_after: None,
            method: None,
        };
        assert!(spec(503).validate().is_ok());
        assert!(spec(404).validate().is_err());
    }
}
