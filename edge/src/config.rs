//! `edge.toml`: listeners, proxy timing, tokens, zones and their records.
//!
//! The key names are a stable interface: the migrator's demo writes this file.

use crate::error::Error;
use crate::faults::FaultSpec;
use crate::secret::Secret;
use handover_contract::duration::serde_str;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The v4 API (under `/client/v4/`), `/metrics` and `/admin/…`.
    #[serde(default = "loopback_any")]
    pub api_listen: SocketAddr,
    /// The proxy: the Host header picks the record.
    #[serde(default = "loopback_any")]
    pub proxy_listen: SocketAddr,
    /// Every origin listens on this port; a record's content picks the IP.
    pub origin_port: u16,
    /// After a record change, new routing decisions move to the new origin
    /// with a probability rising linearly from 0 to 1 across this window.
    #[serde(default = "default_propagation", with = "serde_str")]
    pub propagation: Duration,
    /// A client connection idle longer than this re-resolves the record on
    /// its next request (it takes the record as it is now); a busier one
    /// keeps its origin until its own moment in the propagation window.
    /// "0s": every request after the first re-resolves.
    #[serde(default = "default_idle_timeout", with = "serde_str")]
    pub idle_timeout: Duration,
    /// No response head from the origin within this: 524 (Cloudflare: 100 s).
    #[serde(default = "default_origin_timeout", with = "serde_str")]
    pub origin_timeout: Duration,
    /// No TCP connection to the origin within this: 522.
    #[serde(default = "default_connect_timeout", with = "serde_str")]
    pub connect_timeout: Duration,
    /// Threads serving proxied connections, each with its own origin pool.
    /// Absent: one per core.
    #[serde(default)]
    pub proxy_threads: Option<usize>,
    /// Where records persist; relative paths are relative to the config file.
    /// Absent: state lives in memory only.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Accepted API tokens (`Authorization: Bearer …`).
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// Name of an environment variable holding more tokens (comma or
    /// whitespace separated), so tokens need not be written to disk.
    #[serde(default)]
    pub tokens_env: Option<String>,
    /// Tokens that may read but not change records (a Cloudflare token with
    /// Zone:Read and no DNS:Edit): a change answers 403.
    #[serde(default)]
    pub read_only_tokens: Vec<Secret>,
    /// Name of an environment variable holding more read-only tokens.
    #[serde(default)]
    pub read_only_tokens_env: Option<String>,
    /// Token for the admin endpoints (`/admin/faults`, `/admin/origins…`; see
    /// `admin`); without it they are disabled.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Name of an environment variable holding the admin token instead, so
    /// it need not be written to disk.
    #[serde(default)]
    pub admin_token_env: Option<String>,
    /// API faults armed at start-up (same shape as `POST /admin/faults`).
    #[serde(default)]
    pub faults: Option<FaultSpec>,
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    /// 32 hex characters; generated (and persisted) when absent.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub records: Vec<RecordConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    #[serde(default)]
    pub proxied: bool,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub priority: Option<u16>,
}

/// More threads than this is a typo, not a machine.
const MAX_PROXY_THREADS: usize = 1024;

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
fn default_propagation() -> Duration {
    Duration::from_secs(2)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_origin_timeout() -> Duration {
    Duration::from_secs(100)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_ttl() -> u32 {
    1
}

impl Config {
    /// Reads and checks a config file. Token values never appear in errors.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let err = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut config = Config::parse(&text).map_err(err)?;
        if let Some(state) = &config.state_file {
            if state.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                config.state_file = Some(base.join(state));
            }
        }
        config
            .resolve_tokens(|k| std::env::var(k).ok())
            .map_err(err)?;
        Ok(config)
    }

    /// Parses and validates the TOML text (without touching files or the environment).
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// The number of proxy threads: `proxy_threads`, or one per core.
    pub fn proxy_threads(&self) -> usize {
        self.proxy_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.origin_port == 0 {
            return Err("origin_port must be 1-65535".into());
        }
        if matches!(self.proxy_threads, Some(n) if n == 0 || n > MAX_PROXY_THREADS) {
            return Err(format!("proxy_threads must be 1-{MAX_PROXY_THREADS}"));
        }
        let mut names = std::collections::HashSet::new();
        for zone in &self.zones {
            let name = zone.name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() || !name.contains('.') {
                return Err(format!("zone name {:?} is not a domain name", zone.name));
            }
            if !names.insert(name.clone()) {
                return Err(format!("zone {name} is listed twice"));
            }
            if let Some(id) = &zone.id {
                if !crate::record::is_id(id) {
                    return Err(format!(
                        "zone {name}: id must be 32 lowercase hex characters"
                    ));
                }
            }
            for rec in &zone.records {
                if let Some(id) = &rec.id {
                    if !crate::record::is_id(id) {
                        return Err(format!(
                            "record {}: id must be 32 lowercase hex characters",
                            rec.name
                        ));
                    }
                }
                rec.to_record(&name, chrono::Utc::now())
                    .map_err(|e| format!("zone {name}, record {}: {}", rec.name, describe(&e)))?;
            }
        }
        if let Some(f) = &self.faults {
            f.validate().map_err(|e| format!("[faults]: {e}"))?;
        }
        Ok(())
    }

    /// Adds the tokens from `tokens_env`; at least one token must exist.
    pub fn resolve_tokens(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        if let Some(var) = &self.tokens_env {
            self.tokens
                .extend(tokens_from_env(&lookup, "tokens_env", var)?);
        }
        if let Some(var) = &self.read_only_tokens_env {
            let more = tokens_from_env(&lookup, "read_only_tokens_env", var)?;
            self.read_only_tokens.extend(more);
        }
        if let Some(var) = &self.admin_token_env {
            let value = lookup(var)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            let value = value
                .ok_or_else(|| format!("admin_token_env: environment variable {var} is not set"))?;
            self.admin_token = Some(Secret::new(value));
        }
        let all = self.tokens.iter().chain(&self.read_only_tokens);
        if all.clone().any(|t| t.expose().is_empty()) {
            return Err("tokens: an empty token is not allowed".into());
        }
        if self.tokens.is_empty() {
            return Err("no API tokens: set `tokens` or `tokens_env`".into());
        }
        Ok(())
    }
}

/// The tokens in environment variable `var` (comma or whitespace separated),
/// named by the config `key` that points at it when it is unset.
fn tokens_from_env(
    lookup: impl Fn(&str) -> Option<String>,
    key: &str,
    var: &str,
) -> Result<Vec<Secret>, String> {
    let value =
        lookup(var).ok_or_else(|| format!("{key}: environment variable {var} is not set"))?;
    Ok(value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect())
}

impl RecordConfig {
    /// The record this config entry describes, validated like an API create.
    pub fn to_record(
        &self,
        zone_name: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::record::Record, crate::envelope::ApiError> {
        let body = serde_json::json!({
            "type": self.kind,
            "name": self.name,
            "content": self.content,
            "proxied": self.proxied,
            "ttl": self.ttl,
            "priority": self.priority,
        });
        let input = crate::record::RecordInput::from_body(body.to_string().as_bytes())?;
        let mut rec = input.build(crate::record::WriteMode::Create, None, zone_name, now)?;
        if let Some(id) = &self.id {
            rec.id = id.clone();
        }
        Ok(rec)
    }
}

fn describe(e: &crate::envelope::ApiError) -> String {
    fn last(items: &[crate::envelope::ErrorItem]) -> Option<String> {
        let item = items.first()?;
        last(&item.error_chain).or_else(|| Some(item.message.clone()))
    }
    last(&e.errors).unwrap_or_else(|| "invalid".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../edge.example.toml");

    #[test]
    fn the_documented_example_parses() {
        let c = Config::parse(EXAMPLE).unwrap();
        assert_eq!(c.origin_port, 8080);
        assert_eq!(c.propagation, Duration::from_secs(2));
        assert_eq!(c.zones[0].records[0].content, "127.0.0.2");
        assert!(c.proxy_threads() >= 1, "one per core when absent");
        assert!(
            !format!("{c:?}").contains("tok_"),
            "tokens must be redacted"
        );
    }

    #[test]
    fn bad_configs_say_why() {
        let base = "origin_port = 8080\ntokens = [\"t\"]\n";
        for (extra, needle) in [
            ("bogus = 1\n", "unknown field"),
            ("propagation = \"soon\"\n", "duration"),
            (
                "[[zones]]\nname = \"z.test\"\n[[zones.records]]\nname = \"a\"\ntype = \"A\"\ncontent = \"1.2.3\"\n",
                "IPv4",
            ),
            ("[[zones]]\nname = \"z.test\"\nid = \"nothex\"\n", "32"),
            ("[faults]\nstatus = 404\ncount = 1\n", "status"),
            ("proxy_threads = 0\n", "proxy_threads must be 1-1024"),
            ("proxy_threads = -2\n", "proxy_threads"),
        ] {
            let err = Config::parse(&format!("{base}{extra}")).expect_err(extra);
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn start_up_faults_may_hold_calls() {
        let base = "origin_port = 8080\ntokens = [\"t\"]\n[faults]\n";
        let c = Config::parse(&format!(
            "{base}hang = true\ncount = 1\nmethod = \"PATCH\"\n"
        ))
        .unwrap();
        assert!(c.faults.is_some_and(|f| f.hang && f.status.is_none()));
        for (extra, needle) in [
            ("count = 1\n", "status"),
            ("delay_ms = 5\nhang = true\ncount = 1\n", "delay_ms"),
        ] {
            let err = Config::parse(&format!("{base}{extra}")).expect_err(extra);
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn tokens_come_from_the_environment_too() {
        let mut c = Config::parse("origin_port = 1\ntokens_env = \"X\"\n").unwrap();
        let mut admin =
            Config::parse("origin_port = 1\ntokens = [\"t\"]\nadmin_token_env = \"ADM\"\n")
                .unwrap();
        assert!(admin
            .resolve_tokens(|_| None)
            .unwrap_err()
            .contains("admin_token_env"));
        admin
            .resolve_tokens(|v| (v == "ADM").then(|| "s3cret".to_string()))
            .unwrap();
        assert!(admin.admin_token.is_some_and(|t| t.expose() == "s3cret"));
        assert!(c.clone().resolve_tokens(|_| None).is_err());
        c.resolve_tokens(|_| Some("a, b".into())).unwrap();
        assert_eq!(c.tokens.len(), 2);
        let mut none = Config::parse("origin_port = 1\n").unwrap();
        assert!(none
            .resolve_tokens(|_| None)
            .unwrap_err()
            .contains("no API tokens"));
    }
}
