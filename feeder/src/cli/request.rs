//! The request-template flags: `--request FILE` and the per-key flags that
//! override it, turned into a [`RequestTemplate`] whose errors name the flag
//! the bad value came from.

use crate::template::{Field, TemplateError};
use crate::{Error, RequestTemplate};
use clap::Args;
use std::fmt;
use std::path::{Path, PathBuf};

/// What one write is, for any service: the keys of a plan's
/// `[feeder.request]` as flags (placeholders: see the `--help` epilogue).
#[derive(Debug, Args, Default)]
#[group(id = "template", multiple = true)]
pub struct RequestArgs {
    /// TOML with the keys of a plan's [feeder.request] table at the top level
    /// (method, path, headers, body, ok_status, instance_header,
    /// instance_json, content_pointer), or a plan file whose
    /// [feeder.request] is used. The flags below override its keys.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// HTTP method of every request [default: POST].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Path and query under the target's base path, e.g. /kv/{id} [default: /orders].
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// A request header (repeatable); replaces the file's header of that name.
    /// With a body and no Content-Type, application/json is sent.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = header_arg)]
    pub headers: Vec<HeaderArg>,
    /// The body template; "" sends none [default: the example-app order,
    /// users from GET {target}/users]. A JSON body must render to JSON.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body template from FILE.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Statuses that count as ok, e.g. 200,201; any other 4xx is rejected,
    /// anything else indeterminate [default: any 2xx].
    #[arg(long, value_name = "STATUS,…", value_delimiter = ',')]
    pub ok_status: Vec<u16>,
    /// JSON pointer into the reply body whose string or number names the
    /// instance (instead of --instance-header), e.g. /instance.
    #[arg(long, value_name = "POINTER")]
    pub instance_json: Option<String>,
    /// JSON pointer into the rendered body: the digest of the value there
    /// goes to the ack log's items_digest, for the reconciler to check.
    #[arg(long, value_name = "POINTER")]
    pub content_pointer: Option<String>,
}

/// One `--header 'Name: value'`, as given; Debug hides values that may be
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderArg(String);

impl fmt::Debug for HeaderArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once(':') {
            Some((name, value)) => {
                let shown = crate::template::shown_value(name.trim(), value.trim());
                write!(f, "{}: {shown}", name.trim())
            }
            None => f.write_str("<not NAME: VALUE>"),
        }
    }
}

/// Taken as given: checked in [`RequestArgs::template`], whose messages
/// never repeat a header value (clap's would).
fn header_arg(s: &str) -> Result<HeaderArg, std::convert::Infallible> {
    Ok(HeaderArg(s.to_string()))
}

impl RequestArgs {
    /// Whether any template flag was given (else: the classic orders).
    pub fn given(&self) -> bool {
        self.request.is_some()
            || self.method.is_some()
            || self.path.is_some()
            || !self.headers.is_empty()
            || self.body.is_some()
            || self.body_file.is_some()
            || !self.ok_status.is_empty()
            || self.instance_json.is_some()
            || self.content_pointer.is_some()
    }

    /// The template these flags describe, checked; `instance_header` is
    /// `--instance-header` when given. `None` when no template flag was.
    pub fn template(
        &self,
        instance_header: Option<&str>,
    ) -> Result<Option<RequestTemplate>, Error> {
        if !self.given() {
            return Ok(None);
        }
        let mut t = match &self.request {
            Some(path) => read_request_file(path)?,
            None => RequestTemplate::default(),
        };
        if let Some(m) = &self.method {
            t.method.clone_from(m);
        }
        if let Some(p) = &self.path {
            t.path.clone_from(p);
        }
        let mut seen: Vec<String> = Vec::new();
        for HeaderArg(arg) in &self.headers {
            let Some((name, value)) = arg.split_once(':') else {
                return Err(usage(
                    "--header",
                    "expected 'Name: value' (the value given has no ':')",
                ));
            };
            let name = name.trim();
            if seen.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(usage("--header", format!("{name} given twice")));
            }
            seen.push(name.to_string());
            t.headers.retain(|n, _| !n.eq_ignore_ascii_case(name));
            t.headers.insert(name.to_string(), value.trim().to_string());
        }
        if let Some(b) = &self.body {
            t.body = Some(b.clone());
        }
        if let Some(path) = &self.body_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(&format!("--body-file {}", path.display()), e.to_string()))?;
            t.body = Some(text);
        }
        if !self.ok_status.is_empty() {
            t.ok_status = Some(self.ok_status.clone());
        }
        if let Some(h) = instance_header {
            t.instance_header = Some(h.to_string());
        }
        if let Some(p) = &self.instance_json {
            t.instance_json = Some(p.clone());
        }
        if let Some(p) = &self.content_pointer {
            t.content_pointer = Some(p.clone());
        }
        t.validate()
            .map_err(|e| self.named(e, instance_header.is_some()))?;
        Ok(Some(t))
    }

    /// The error under the flag its value came from, else under the file's key.
    fn named(&self, e: TemplateError, instance_header_flag: bool) -> Error {
        let flag = match &e.field {
            Field::Method if self.method.is_some() => Some("--method".to_string()),
            Field::Path if self.path.is_some() => Some("--path".into()),
            Field::Header(name) if self.headers.iter().any(|h| h.named(name)) => {
                Some(format!("--header {name}"))
            }
            Field::Body if self.body.is_some() => Some("--body".into()),
            Field::Body => self
                .body_file
                .as_ref()
                .map(|p| format!("--body-file {}", p.display())),
            Field::OkStatus if !self.ok_status.is_empty() => Some("--ok-status".into()),
            Field::InstanceHeader if instance_header_flag => Some("--instance-header".into()),
            Field::InstanceJson if self.instance_json.is_some() => Some("--instance-json".into()),
            Field::ContentPointer if self.content_pointer.is_some() => {
                Some("--content-pointer".into())
            }
            _ => None,
        };
        match (flag, &self.request) {
            (Some(flag), _) => usage(&flag, e.reason),
            (None, Some(file)) => usage(&format!("--request {}", file.display()), e.to_string()),
            (None, None) => Error::Template(e),
        }
    }
}

impl HeaderArg {
    fn named(&self, name: &str) -> bool {
        self.0
            .split_once(':')
            .is_some_and(|(n, _)| n.trim() == name)
    }
}

fn usage(flag: &str, reason: impl fmt::Display) -> Error {
    Error::Usage(format!("{flag}: {reason}"))
}

/// A request file: the template's keys at the top level, or a plan file
/// whose `[feeder.request]` table is the template.
pub fn read_request_file(path: &Path) -> Result<RequestTemplate, Error> {
    let flag = format!("--request {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| usage(&flag, e))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| usage(&flag, toml_error(&text, &e)))?;
    let Some(feeder) = table.get("feeder") else {
        return toml::from_str(&text).map_err(|e| usage(&flag, toml_error(&text, &e)));
    };
    let Some(request) = feeder.get("request") else {
        return Err(usage(
            &flag,
            "a plan file without a [feeder.request] table (or give the template's keys at the top level)",
        ));
    };
    request
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| usage(&flag, format!("feeder.request: {}", e.message())))
}

/// Where and what, without the source line toml would quote (it may hold
/// a credential).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line} column {column}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests;
