//! The request template: what one write is, for any service — method, path,
//! headers and body with the placeholders `{id}` (the order id the feeder
//! generates, recorded in the ack log exactly as sent), `{run}` and `{seq}`;
//! which statuses count as ok; where the reply names its instance; and which
//! part of the body is the stored content the reconciler checks.
//!
//! [`RequestTemplate`] is the user-facing table (the migrator's
//! `[feeder.request]`, the feeder's `--request FILE` and flags).
//! [`RequestTemplate::compile`] checks it once — every error names the key —
//! and splits each text into literal and placeholder pieces
//! ([`text::Text`]), so rendering request `seq` costs a few copies.
//!
//! - [`text`]: placeholder syntax, parsing and rendering.
//! - [`pointer`]: JSON pointer checks and reading an instance out of a reply.

pub mod pointer;
pub mod text;

use crate::outcome::OkStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
pub use text::{Text, Vars};

/// What every request of a run looks like (all keys optional; the defaults
/// are the example app's order: `POST /orders`, a JSON order body, any 2xx
/// ok, the instance from `X-Instance`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    /// An HTTP method token, sent as written. Default `POST`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path and optional query under the target's base path; must start
    /// with `/`. Default `/orders`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Extra request headers, name → value (values may hold placeholders).
    /// `Host`, `Content-Length`, `Transfer-Encoding`, `Connection` and
    /// `Upgrade` are the feeder's own. With a body and no `Content-Type`
    /// here, `Content-Type: application/json` is sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body. Absent: the example-app order (user ids from
    /// `GET {target}/users`). `""`: no body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The statuses that count as ok. Absent: any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_status: Option<Vec<u16>>,
    /// The reply header naming the instance. Absent: the feeder's
    /// `instance_header` option (default `X-Instance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_header: Option<String>,
    /// A JSON pointer into the reply body whose string or number names the
    /// instance; replaces the header. The body is then read (up to
    /// [`REPLY_BODY_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_json: Option<String>,
    /// A JSON pointer into the rendered request body: the digest of the
    /// value there goes to the ack line's `items_digest`, so the reconciler
    /// can check the stored content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_pointer: Option<String>,
}

/// The most of a reply body read for `instance_json`; a longer body names
/// no instance (the rest is read and dropped, so the connection stays usable).
pub const REPLY_BODY_LIMIT: usize = 64 * 1024;

fn default_method() -> String {
    "POST".into()
}

fn default_path() -> String {
    "/orders".into()
}

impl Default for RequestTemplate {
    fn default() -> Self {
        RequestTemplate {
            method: default_method(),
            path: default_path(),
            headers: BTreeMap::new(),
            body: None,
            ok_status: None,
            instance_header: None,
            instance_json: None,
            content_pointer: None,
        }
    }
}

/// Header values may be credentials: Debug shows the names, and the values
/// only of headers whose names do not look secret.
impl fmt::Debug for RequestTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), shown_value(k, v)))
            .collect();
        f.debug_struct("RequestTemplate")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("ok_status", &self.ok_status)
            .field("instance_header", &self.instance_header)
            .field("instance_json", &self.instance_json)
            .field("content_pointer", &self.content_pointer)
            .finish()
    }
}

/// `value`, or a mark in its place when the header may carry a secret.
pub fn shown_value<'a>(name: &str, value: &'a str) -> &'a str {
    const SECRET: &[&str] = &[
        "auth",
        "token",
        "secret",
        "key",
        "pass",
        "cookie",
        "session",
        "sign",
        "credential",
    ];
    let lower = name.to_ascii_lowercase();
    if SECRET.iter().any(|s| lower.contains(s)) {
        "<redacted>"
    } else {
        value
    }
}

/// The template key a problem is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Method,
    Path,
    /// The header, by the name it was given.
    Header(String),
    Body,
    OkStatus,
    InstanceHeader,
    InstanceJson,
    ContentPointer,
}

impl Field {
    /// The plan key: `feeder.request.path`, `feeder.request.headers.<name>`, …
    pub fn key(&self) -> String {
        let tail = match self {
            Field::Method => "method",
            Field::Path => "path",
            Field::Header(name) => return format!("feeder.request.headers.{name}"),
            Field::Body => "body",
            Field::OkStatus => "ok_status",
            Field::InstanceHeader => "instance_header",
            Field::InstanceJson => "instance_json",
            Field::ContentPointer => "content_pointer",
        };
        format!("feeder.request.{tail}")
    }
}

/// A template the user must fix; says which key and why (header values are
/// never quoted: they may be credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", field.key())]
pub struct TemplateError {
    pub field: Field,
    pub reason: String,
}

fn fail<T>(field: Field, reason: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError {
        field,
        reason: reason.into(),
    })
}

/// Where the instance that answered is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyInstance {
    /// This reply header.
    Header(String),
    /// The string or number at this JSON pointer in the reply body.
    Json(String),
}

/// What a request's body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The example-app order for the slot.
    Order,
    /// None at all.
    Empty,
    Text(Text),
}

/// A checked template, split into pieces, ready to render.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub method: String,
    pub path: Text,
    /// In order, the default `content-type` last when one was added.
    pub headers: Headers,
    pub body: Body,
    /// Checked to resolve in a sample render of a JSON body.
    pub content_pointer: Option<pointer::Pointer>,
    pub ok: OkStatus,
    /// A `User-Agent` is among the headers: the feeder sends none of its own.
    pub own_user_agent: bool,
}

/// Header names and value templates; Debug hides values that may be secret.
#[derive(Clone, Default)]
pub struct Headers(pub Vec<(String, Text)>);

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, value)| {
                let shown = value.render_string(Vars::SAMPLE);
                (name.clone(), shown_value(name, &shown).to_string())
            }))
            .finish()
    }
}

impl Headers {
    /// Appends `name: value\r\n` per header for `vars`.
    pub fn render(&self, vars: Vars<'_>, out: &mut Vec<u8>) {
        for (name, value) in &self.0 {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            value.render(vars, out);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The rendered block when no value has a placeholder: the same bytes
    /// for every request, rendered once.
    pub fn as_literal(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for (_, value) in &self.0 {
            value.as_literal()?;
        }
        self.render(Vars::SAMPLE, &mut out);
        Some(out)
    }
}

/// Headers the feeder writes itself: framing, connection and target.
const FEEDER_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

impl RequestTemplate {
    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), TemplateError> {
        self.compile().map(|_| ())
    }

    /// Where the instance is read from, `default_header` when the template
    /// names neither a header nor a pointer.
    pub fn reply_instance(&self, default_header: &str) -> ReplyInstance {
        match (&self.instance_json, &self.instance_header) {
            (Some(p), _) => ReplyInstance::Json(p.clone()),
            (None, Some(h)) => ReplyInstance::Header(h.clone()),
            (None, None) => ReplyInstance::Header(default_header.to_string()),
        }
    }

    /// Checks the template and splits it for rendering.
    pub fn compile(&self) -> Result<Compiled, TemplateError> {
        let method = check_method(&self.method)?;
        let path = check_path(&self.path)?;
        let (mut headers, content_type) = check_headers(&self.headers)?;
        let body = match self.body.as_deref() {
            None => Body::Order,
            Some("") => Body::Empty,
            Some(src) => Body::Text(Text::parse(src).or_else(|e| fail(Field::Body, e))?),
        };
        let json = match (&body, &content_type) {
            (Body::Empty, _) => false,
            (_, None) => {
                headers
                    .0
                    .push(("content-type".into(), Text::literal("application/json")));
                true
            }
            (_, Some(media)) => is_json_media(media),
        };
        let sample = match &body {
            Body::Text(text) if json => Some(sample_json(text)?),
            _ => None,
        };
        let ok = match &self.ok_status {
            None => OkStatus::default(),
            Some(list) => {
                check_ok_status(list)?;
                OkStatus::listed(list)
            }
        };
        self.check_instance()?;
        let content_pointer = match &self.content_pointer {
            None => None,
            Some(p) => {
                Some(pointer::Pointer::parse(p).or_else(|e| fail(Field::ContentPointer, e))?)
            }
        };
        if let Some(p) = &self.content_pointer {
            let Some(sample) = sample else {
                return fail(
                    Field::ContentPointer,
                    "needs a JSON body: set feeder.request.body (with a JSON content type, the default)",
                );
            };
            if sample.pointer(p).is_none() {
                return fail(
                    Field::ContentPointer,
                    format!("{p:?} resolves to nothing in the body"),
                );
            }
        }
        let own_user_agent = headers
            .0
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
        Ok(Compiled {
            method,
            path,
            headers,
            body,
            content_pointer,
            ok,
            own_user_agent,
        })
    }

    fn check_instance(&self) -> Result<(), TemplateError> {
        if let Some(h) = &self.instance_header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return fail(
                    Field::InstanceHeader,
                    format!("{h:?} is not a valid header name"),
                );
            }
        }
        if let Some(p) = &self.instance_json {
            if self.instance_header.is_some() {
                return fail(
                    Field::InstanceJson,
                    "set instance_header or instance_json, not both",
                );
            }
            pointer::check(p).or_else(|e| fail(Field::InstanceJson, e))?;
        }
        Ok(())
    }
}

/// An RFC 9110 token: what a method may be.
fn check_method(m: &str) -> Result<String, TemplateError> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if m.is_empty() || !m.bytes().all(tchar) {
        return fail(
            Field::Method,
            format!("{m:?} is not an HTTP method (a token such as GET, PUT, POST)"),
        );
    }
    Ok(m.to_string())
}

/// Starts with `/`; visible ASCII only, no `#` (placeholder values are
/// `A-Z a-z 0-9 _ . : -`, so checking the literals checks every render).
fn check_path(p: &str) -> Result<Text, TemplateError> {
    let text = Text::parse(p).or_else(|e| fail(Field::Path, e))?;
    if !p.starts_with('/') {
        return fail(Field::Path, format!("{p:?} must start with '/'"));
    }
    if let Some(bad) = text
        .literals()
        .flat_map(str::chars)
        .find(|c| !c.is_ascii_graphic() || *c == '#')
    {
        return fail(
            Field::Path,
            format!(
                "{p:?} holds {bad:?}: a request path is visible ASCII without '#' \
                 (percent-encode anything else)"
            ),
        );
    }
    Ok(text)
}

/// The headers, checked, and the sample-rendered `Content-Type` if one was given.
fn check_headers(
    given: &BTreeMap<String, String>,
) -> Result<(Headers, Option<String>), TemplateError> {
    let mut headers = Headers::default();
    let mut content_type = None;
    for (name, value) in given {
        let field = || Field::Header(name.clone());
        let Ok(parsed) = http::HeaderName::from_bytes(name.as_bytes()) else {
            return fail(field(), "not a valid HTTP header name");
        };
        if FEEDER_HEADERS.contains(&parsed.as_str()) {
            return fail(
                field(),
                "set by the feeder itself (it frames each request, keeps the connection \
                 and names the target as Host)",
            );
        }
        if headers.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return fail(field(), "given twice (header names ignore case)");
        }
        let text = Text::parse(value).or_else(|e| fail(field(), e))?;
        let sample = text.render_string(Vars::SAMPLE);
        if http::HeaderValue::from_str(&sample).is_err() {
            return fail(
                field(),
                "not a valid HTTP header value (visible text, no control characters or newlines)",
            );
        }
        if parsed == http::header::CONTENT_TYPE {
            content_type = Some(sample);
        }
        headers.0.push((name.clone(), text));
    }
    Ok((headers, content_type))
}

/// `application/json`, or any `…/…+json`, parameters ignored.
fn is_json_media(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json")
}

/// The body rendered with sample values, which must be JSON.
fn sample_json(text: &Text) -> Result<serde_json::Value, TemplateError> {
    let rendered = text.render_string(Vars::SAMPLE);
    serde_json::from_str(&rendered).or_else(|e| {
        fail(
            Field::Body,
            format!(
                "not valid JSON once rendered ({e}; rendered with {{id}} = sample-0000000001, \
                 {{run}} = sample, {{seq}} = 1; placeholders for strings go inside quotes)"
            ),
        )
    })
}

fn check_ok_status(list: &[u16]) -> Result<(), TemplateError> {
    if list.is_empty() {
        return fail(
            Field::OkStatus,
            "lists no status: name at least one, or leave ok_status out for any 2xx",
        );
    }
    if let Some(bad) = list.iter().find(|s| !(100..=599).contains(*s)) {
        return fail(
            Field::OkStatus,
            format!("{bad} is not an HTTP status (100-599)"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
