//! What the waiting steps read from the world, chosen by the plan: the
//! example app's health document by default, or the service's own signals
//! (Prometheus metrics, a JSON document, a command, a listing, a database).
//!
//! One trait per step kind, one file per implementation, like `switch/`:
//! - [`converge`]: B's applied position against the store's head.
//! - [`drain`]: whether A is still being used.
//! - [`reconcile`]: what the service stores, id by id.
//!
//! And what several of them read with:
//! - [`prometheus`]: the text exposition format, a metric summed over label sets.
//! - [`json`]: a number at a JSON pointer of a document.

pub mod converge;
pub mod drain;
pub mod json;
pub mod prometheus;
pub mod reconcile;

use std::time::Duration;

use crate::process::ProcessError;

/// How long one read of a source may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a source could not be read. Every variant names the plan key it is
/// about, so a preflight refusal says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Nothing answered (refused, reset, timed out): the service or the
    /// network is down, or the plan's URL is wrong.
    #[error("{key}: {url} is unreachable: {reason}")]
    Unreachable {
        key: String,
        url: String,
        reason: String,
    },
    /// It answered, but not with what the plan says to read there (an HTTP
    /// error, a body that is not the format): the service or the plan.
    #[error("{key}: {what}")]
    Unexpected { key: String, what: String },
    /// The metric, label set or pointer is not in what was read: the plan's
    /// author must fix the name.
    #[error("{key}: {what}")]
    Missing { key: String, what: String },
    /// The plan's command failed or printed something else than expected.
    #[error("{key}: {what}")]
    Command { key: String, what: String },
}

impl SourceError {
    /// The plan key the error is about.
    pub fn key(&self) -> &str {
        match self {
            SourceError::Unreachable { key, .. }
            | SourceError::Unexpected { key, .. }
            | SourceError::Missing { key, .. }
            | SourceError::Command { key, .. } => key,
        }
    }

    pub(crate) fn command(key: &str, e: ProcessError) -> SourceError {
        SourceError::Command {
            key: key.to_string(),
            what: e.to_string(),
        }
    }
}

/// A client for sources that read over HTTP: short timeouts, fresh
/// connections (a pooled one could outlive a stopped origin).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(READ_TIMEOUT)
        .connect_timeout(READ_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// GETs `url` and returns the body of a 2xx reply.
pub async fn fetch(
    http: &reqwest::Client,
    key: &str,
    url: &url::Url,
) -> Result<bytes::Bytes, SourceError> {
    let shown = crate::redact::passwords(url.as_str());
    let resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| SourceError::Unreachable {
            key: key.to_string(),
            url: shown.clone(),
            reason: error_chain(&e),
        })?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| SourceError::Unreachable {
        key: key.to_string(),
        url: shown.clone(),
        reason: error_chain(&e),
    })?;
    if !status.is_success() {
        let start = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        return Err(SourceError::Unexpected {
            key: key.to_string(),
            what: format!("{shown} answered HTTP {}: {start:?}", status.as_u16()),
        });
    }
    Ok(body)
}

/// Whether `url` is served by `origin` (same host and port as its URL or its
/// health URL): such a source cannot be read before that origin runs.
pub fn served_by(url: &url::Url, origin: &crate::plan::Origin) -> bool {
    let key = |u: &url::Url| (u.host_str().map(str::to_string), u.port_or_known_default());
    key(url) == key(&origin.url) || key(url) == key(&origin.health())
}

/// An error and its causes on one line (reqwest keeps the useful part in `source`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
