//! Injected API faults, so the migrator's retry logic meets real 429s and
//! 5xxs, and its switch meets an API that answers late or never.
//!
//! A spec arms the next `count` calls (of one `method`, or any): each is
//! held `delay_ms`, or with `hang: true` until the faults are cleared or
//! re-armed (or the edge shuts down), and then answered with `status` — or,
//! without a `status`, passed on to the API as if nothing happened. A client
//! that gives up on a held call closes its connection; the call is then
//! dropped unanswered and changes nothing.

use crate::envelope::ApiError;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// The longest `delay_ms`: an hour.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// "Hold and/or fail the next `count` API calls."
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// 429, 500, 502 or 503; absent: the call goes through after its hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub count: u32,
    /// Seconds for `Retry-After`; 429 defaults to 1.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Only calls with this method consume the fault (e.g. `"PATCH"`); any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Hold each call this long before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Hold each call until the faults are cleared or re-armed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hang: bool,
}

/// What the JSON of each field must be, for messages that name the field.
const FIELD_TYPES: [(&str, &str); 6] = [
    ("status", "an HTTP status (429, 500, 502, 503)"),
    ("count", "a whole number of calls"),
    ("retry_after", "whole seconds"),
    ("method", "an HTTP method such as \"PATCH\""),
    ("delay_ms", "whole milliseconds"),
    ("hang", "true or false"),
];

impl FaultSpec {
    /// Parses and checks a `POST /admin/faults` body; a 400 naming the field.
    pub fn from_body(body: &[u8]) -> Result<FaultSpec, ApiError> {
        let map = crate::envelope::body_object(body)?;
        if let Some((key, wanted)) = map.iter().find_map(|(k, v)| mistyped(k, v)) {
            return Err(ApiError::bad_request(
                1001,
                format!("{key}: must be {wanted}"),
            ));
        }
        let spec: FaultSpec = serde_json::from_value(Value::Object(map))
            .map_err(|e| ApiError::bad_request(1001, format!("Request body is invalid: {e}")))?;
        spec.validate()
            .map_err(|e| ApiError::bad_request(1001, e))?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(status) = self.status {
            if !matches!(status, 429 | 500 | 502 | 503) {
                return Err(format!(
                    "status {status} is not injectable (429, 500, 502, 503)"
                ));
            }
        }
        if let Some(m) = &self.method {
            if http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_err() {
                return Err(format!("method {m:?} is not an HTTP method"));
            }
        }
        match (self.delay_ms, self.hang) {
            (Some(_), true) => return Err("delay_ms and hang: give one, not both".into()),
            (Some(ms), false) if !(1..=MAX_DELAY_MS).contains(&ms) => {
                return Err(format!("delay_ms {ms} is not in 1-{MAX_DELAY_MS}"));
            }
            (None, false) if self.status.is_none() => {
                return Err("status: give a status, delay_ms or hang: true".into());
            }
            _ => {}
        }
        Ok(())
    }

    fn error(&self) -> Option<ApiError> {
        let code = self.status?;
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut err = match code {
            429 => ApiError::new(
                status,
                971,
                "Please wait and consider throttling your request speed",
            ),
            503 => ApiError::new(status, 10003, "Service temporarily unavailable"),
            502 => ApiError::new(status, 10004, "Bad gateway"),
            _ => ApiError::new(status, 10002, "An unknown error has occurred"),
        };
        err.retry_after = match code {
            429 => Some(self.retry_after.unwrap_or(1)),
            _ => self.retry_after,
        };
        Some(err)
    }

    fn hold(&self) -> Hold {
        match (self.hang, self.delay_ms) {
            (true, _) => Hold::UntilCleared,
            (false, Some(ms)) => Hold::For(Duration::from_millis(ms)),
            (false, None) => Hold::No,
        }
    }
}

/// The field `key` when its value has the wrong JSON type, with what it must be.
fn mistyped(key: &str, v: &Value) -> Option<(String, &'static str)> {
    let (_, wanted) = FIELD_TYPES.iter().find(|(k, _)| *k == key)?;
    let fits = match key {
        "status" => u16::deserialize(v).is_ok(),
        "count" => u32::deserialize(v).is_ok(),
        "retry_after" | "delay_ms" => Option::<u64>::deserialize(v).is_ok(),
        "method" => Option::<String>::deserialize(v).is_ok(),
        _ => bool::deserialize(v).is_ok(),
    };
    (!fits).then(|| (key.to_string(), *wanted))
}

/// How long a call that consumed a fault is held before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    No,
    For(Duration),
    UntilCleared,
}

/// What a call that consumed a fault gets: a hold, then the fault's error
/// (or, with none, the API's own answer). See [`Faults::hold`].
#[derive(Debug)]
pub struct Injection {
    pub hold: Hold,
    pub error: Option<ApiError>,
    /// Subscribed when the fault was taken, so no later arm or clear is missed.
    released: watch::Receiver<u64>,
}

/// What is armed now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStatus {
    pub armed: Option<FaultSpec>,
    /// Calls still to fail.
    pub remaining: u32,
    /// Calls failed or held on purpose since start.
    pub injected_total: u64,
    /// Calls being held right now.
    #[serde(default)]
    pub waiting: u64,
}

#[derive(Debug)]
pub struct Faults {
    state: Mutex<FaultStatus>,
    /// Bumped on every arm and clear: held calls are released.
    changes: watch::Sender<u64>,
    /// Shutting down: nothing is held any more.
    closed: AtomicBool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            state: Mutex::default(),
            changes: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

impl Faults {
    pub fn new(initial: Option<FaultSpec>) -> Self {
        let f = Faults::default();
        if let Some(spec) = initial {
            f.arm(spec);
        }
        f
    }

    /// Replaces whatever was armed (releasing held calls). `count = 0` disarms.
    pub fn arm(&self, spec: FaultSpec) {
        {
            let mut s = self.lock();
            s.remaining = spec.count;
            s.armed = (spec.count > 0).then_some(spec);
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// Disarms, and releases every held call.
    pub fn clear(&self) {
        {
            let mut s = self.lock();
            s.armed = None;
            s.remaining = 0;
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// The edge is stopping: held calls are released and none is held again.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn status(&self) -> FaultStatus {
        self.lock().clone()
    }

    /// Consumes one armed fault if it applies to this call.
    pub fn take(&self, method: &http::Method) -> Option<Injection> {
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
        Some(Injection {
            hold: spec.hold(),
            error: spec.error(),
            released: self.changes.subscribe(),
        })
    }

    /// Holds a call as its injection says, then gives the error to answer
    /// with (`None`: let the API answer). Any arm or clear since the fault
    /// was taken (or the edge stopping) ends the hold.
    pub async fn hold(&self, injection: Injection) -> Option<ApiError> {
        let Injection {
            hold,
            error,
            mut released,
        } = injection;
        if hold == Hold::No || self.closed.load(Ordering::Relaxed) {
            return error;
        }
        let _waiting = Waiting::new(self);
        let released = async {
            // The sender lives as long as `self`: `changed` never fails.
            let _ = released.changed().await;
        };
        match hold {
            Hold::For(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = released => {}
                }
            }
            _ => released.await,
        }
        error
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultStatus> {
        // A poisoned lock only means a panic elsewhere; the data is still a plain value.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a held call in `waiting` for as long as it lives (also when the
/// client goes away and the call is dropped).
struct Waiting<'a>(&'a Faults);

impl<'a> Waiting<'a> {
    fn new(faults: &'a Faults) -> Self {
        faults.lock().waiting += 1;
        Waiting(faults)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.waiting = s.waiting.saturating_sub(1);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fails_exactly_count_calls_then_passes() {
        let f = Faults::new(Some(FaultSpec {
            status: Some(429),
            count: 2,
            retry_after: None,
            method: Some("patch".into()),
            ..FaultSpec::default()
        }));
        assert!(f.take(&http::Method::GET).is_none(), "GET is not targeted");
        let e = f.take(&http::Method::PATCH).expect("first").error.unwrap();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(1));
        assert!(f.take(&http::Method::PATCH).is_some());
        assert!(f.take(&http::Method::PATCH).is_none());
        assert_eq!(f.status().injected_total, 2);
    }

    #[test]
    fn only_server_errors_and_429_are_injectable() {
        let spec = |status| FaultSpec {
            status: Some(status),
            count: 1,
            retry_after: None,
            method: None,
            ..FaultSpec::default()
        };
        assert!(spec(503).validate().is_ok());
        assert!(spec(404).validate().is_err());
    }

    fn spec(body: &str) -> Result<FaultSpec, ApiError> {
        FaultSpec::from_body(body.as_bytes())
    }

    #[test]
    fn a_hold_alone_lets_the_call_through_and_a_bad_body_names_the_field() {
        let delayed = spec(r#"{"delay_ms": 500, "count": 2, "method": "PATCH"}"#).unwrap();
        assert_eq!(delayed.hold(), Hold::For(Duration::from_millis(500)));
        assert!(delayed.error().is_none(), "no status: the API answers");
        let hung = spec(r#"{"hang": true, "count": 1, "status": 503}"#).unwrap();
        assert_eq!(hung.hold(), Hold::UntilCleared);
        assert_eq!(hung.error().unwrap().status.as_u16(), 503);
        let cases = [
            (r#"{"count": 1}"#, "status"),
            (r#"{"status": "429", "count": 1}"#, "status"),
            (r#"{"status": 429, "count": -1}"#, "count"),
            (r#"{"status": 429}"#, "count"),
            (r#"{"hang": "yes", "count": 1}"#, "hang"),
            (r#"{"delay_ms": 0, "count": 1}"#, "delay_ms"),
            (r#"{"delay_ms": 5, "hang": true, "count": 1}"#, "delay_ms"),
            (r#"{"status": 429, "count": 1, "sttus": 1}"#, "sttus"),
            (r#"{"status": 429, "count": 1, "method": "P A"}"#, "method"),
        ];
        for (body, field) in cases {
            let err = spec(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
            let message = &err.errors[0].message;
            assert!(message.contains(field), "{body}: {message}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hang_lasts_until_cleared_and_is_counted_while_it_waits() {
        let f = std::sync::Arc::new(Faults::new(Some(
            spec(r#"{"hang": true, "count": 1}"#).unwrap(),
        )));
        let injection = f.take(&http::Method::PATCH).expect("armed");
        let held = tokio::spawn({
            let f = std::sync::Arc::clone(&f);
            async move { f.hold(injection).await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!held.is_finished(), "a hang has no end of its own");
        assert_eq!(f.status().waiting, 1);
        f.clear();
        assert!(held.await.unwrap().is_none(), "no status: the API answers");
        assert_eq!(f.status().waiting, 0);
        assert_eq!(f.status().injected_total, 1);
    }
}
