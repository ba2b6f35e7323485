//! `reconcile.kind = "example_app"` (the default): the example app on B,
//! over HTTP — its `/health` positions, to wait for B to apply the head, and
//! its `GET /orders` as an NDJSON stream (never buffered whole), each order
//! with its user and the digest of its line items.

use std::borrow::Cow;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use handover_contract::{Health, ItemsDigest};
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use url::Url;

use super::lines::{first_line, pump, LineError, PumpError, MAX_LINE};
use super::{StoredOrders, Streamed, Waited};
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::wait::{until_applied, PollError};
use crate::reconcile::{ReconcileError, ReconcileOptions};
use crate::sources::converge::Positions;
use crate::sources::{error_chain as chain, SourceError};

/// The plan key a failing check names: the example app is read at B's URL.
const KEY: &str = "b.url";

/// `http://user:secret@host/` → `http://user:***@host/`, for messages and reports.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// One line of `/orders`, borrowed: the fields of
/// [`handover_contract::Order`] (all required, as there), with the line items
/// folded into their digest as they are read instead of into a `Vec`.
#[derive(Deserialize)]
struct OrderLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(deserialize_with = "items_digest")]
    line_items: u64,
    #[serde(borrow)]
    #[allow(dead_code)]
    placed_at: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code)]
    placed_by: Cow<'a, str>,
}

impl OrderLine<'_> {
    fn view(&self) -> OrderView<'_> {
        OrderView {
            id: &self.id,
            user_id: Some(&self.user_id),
            items_digest: Some(self.line_items),
        }
    }
}

#[derive(Deserialize)]
struct ItemLine<'a> {
    #[serde(borrow)]
    product: Cow<'a, str>,
    quantity: u32,
}

/// The contract's [`ItemsDigest`] folded while the array is read, so no
/// `Vec` of items is built; a test pins it to `line_items_digest`.
fn items_digest<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Fold;
    impl<'de> Visitor<'de> for Fold {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of line items")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
            let mut digest = ItemsDigest::new();
            while let Some(item) = seq.next_element::<ItemLine<'de>>()? {
                digest.push(&item.product, item.quantity);
            }
            Ok(digest.finish())
        }
    }
    d.deserialize_seq(Fold)
}

/// The example app at B's base URL.
pub struct App {
    http: reqwest::Client,
    shown: String,
    health: Url,
    orders: Url,
    idle_timeout: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("url", &self.shown).finish()
    }
}

impl App {
    /// Checks the URL (http or https, with a host) and prepares a client.
    pub fn new(base: &Url, opts: &ReconcileOptions) -> Result<Self, ReconcileError> {
        let shown = redacted(base);
        let bad = |reason: &str| ReconcileError::BadUrl {
            url: shown.clone(),
            reason: reason.into(),
        };
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        let at = |leaf: &str| {
            let mut u = base.clone();
            let path = format!("{}/{leaf}", base.path().trim_end_matches('/'));
            u.set_path(&path);
            u.set_query(None);
            u.set_fragment(None);
            u
        };
        let http = reqwest::Client::builder()
            .connect_timeout(opts.request_timeout)
            .build()
            .map_err(|e| ReconcileError::Internal(chain(&e)))?;
        Ok(App {
            http,
            health: at("health"),
            orders: at("orders"),
            shown,
            idle_timeout: opts.request_timeout,
        })
    }

    /// The app's base URL, password masked.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    async fn health_once(&self, timeout: Duration) -> Result<Health, PollError> {
        let resp = self
            .http
            .get(self.health.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| PollError {
                unreachable: e.is_connect(),
                reason: chain(&e),
            })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| PollError {
            unreachable: false,
            reason: chain(&e),
        })?;
        // 503 while catching up still carries the document: positions are what count.
        serde_json::from_slice::<Health>(&body).map_err(|e| {
            let start = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            PollError {
                unreachable: false,
                reason: format!("HTTP {status}, not a health document ({e}): {start:?}"),
            }
        })
    }

    /// Polls `/health` until `applied >= head` (see [`until_applied`]).
    pub async fn wait_applied(
        &self,
        opts: &ReconcileOptions,
    ) -> Result<(Positions, Duration), ReconcileError> {
        let read = || async {
            self.health_once(opts.request_timeout)
                .await
                .map(|h| Positions {
                    applied: h.applied,
                    head: h.head,
                    // Its head is the store's only while it can reach the
                    // store (a health fault or a lag does not matter here).
                    ready: h.checks.store == "ok",
                })
        };
        until_applied(&self.shown, read, opts).await
    }

    /// `GET /orders` asking for NDJSON; a reply other than 2xx is an error.
    async fn open_orders(&self) -> Result<reqwest::Response, ReconcileError> {
        let resp = self
            .http
            .get(self.orders.clone())
            .header(reqwest::header::ACCEPT, "application/x-ndjson")
            .send()
            .await
            .map_err(|e| ReconcileError::Unreachable {
                url: self.shown.clone(),
                reason: chain(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ReconcileError::Http {
                url: self.shown.clone(),
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        Ok(resp)
    }

    /// Streams `GET /orders` as NDJSON into `ledger`; returns it and the
    /// count. Receiving and parsing overlap (see [`pump`]), so a large set
    /// uses two cores while memory stays at a few chunks.
    pub async fn stream_orders(&self, ledger: Ledger) -> Result<(Ledger, u64), ReconcileError> {
        let resp = self.open_orders().await?;
        let chunks = resp.bytes_stream().map_err(|e| chain(&e));
        pump(chunks, self.idle_timeout, ledger, take_order)
            .await
            .map_err(|e| self.pump_error(e))
    }

    fn pump_error(&self, e: PumpError<String>) -> ReconcileError {
        let url = self.shown.clone();
        match e {
            PumpError::Idle(idle) => ReconcileError::Stream {
                url,
                reason: format!("no data for {idle:?} while reading /orders"),
            },
            PumpError::Broke(reason) => ReconcileError::Stream { url, reason },
            PumpError::Line(LineError::TooLong { line }) => ReconcileError::BadResponse {
                url,
                reason: format!("/orders line {line} is longer than {MAX_LINE} bytes"),
            },
            PumpError::Line(LineError::Bad { line, error }) => ReconcileError::BadResponse {
                url,
                reason: format!("/orders line {line} {error}"),
            },
            PumpError::Internal(reason) => ReconcileError::Internal(reason),
        }
    }

    /// Reads `/orders` up to the end of its first order.
    async fn first_order(&self) -> Result<String, SourceError> {
        let source = |e: ReconcileError| SourceError::Unexpected {
            key: KEY.into(),
            what: e.to_string(),
        };
        let resp = self.open_orders().await.map_err(|e| match e {
            ReconcileError::Unreachable { url, reason } => SourceError::Unreachable {
                key: KEY.into(),
                url,
                reason,
            },
            other => source(other),
        })?;
        let chunks = resp.bytes_stream().map_err(|e| chain(&e));
        let line = first_line(chunks, self.idle_timeout)
            .await
            .map_err(|e| match e {
                PumpError::Broke(reason) => SourceError::Unreachable {
                    key: KEY.into(),
                    url: self.shown.clone(),
                    reason,
                },
                other => source(self.pump_error(other)),
            })?;
        let Some(line) = line else {
            return Ok(format!(
                "{}/orders lists no orders yet",
                self.shown.trim_end_matches('/')
            ));
        };
        let order: OrderLine<'_> = serde_json::from_slice(&line).map_err(|e| SourceError::Unexpected {
            key: KEY.into(),
            what: format!(
                "{}/orders is not the example app's NDJSON ({e}); for another service choose reconcile.kind = \"http\", \"sql\", \"command\" or \"none\"",
                self.shown.trim_end_matches('/')
            ),
        })?;
        Ok(format!(
            "first order: id {:?}, user {:?}",
            order.id, order.user_id
        ))
    }
}

/// One NDJSON line of `/orders` into the ledger.
fn take_order(line: &[u8], ledger: &mut Ledger) -> Result<(), String> {
    let order: OrderLine<'_> = serde_json::from_slice(line).map_err(|e| {
        format!(
            "is not an order as NDJSON ({e}); starts {:?}",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        )
    })?;
    ledger.observe(order.view());
    Ok(())
}

impl StoredOrders for App {
    fn kind(&self) -> &'static str {
        "example_app"
    }

    fn describe(&self) -> String {
        format!("example app {} (GET /orders)", self.shown)
    }

    fn check<'a>(&'a self, _run: Option<&'a str>) -> BoxFuture<'a, Result<String, SourceError>> {
        self.first_order().boxed()
    }

    fn stream<'a>(&'a self, ledger: Ledger, _run: Option<&'a str>) -> Streamed<'a> {
        self.stream_orders(ledger).boxed()
    }

    fn wait_applied<'a>(&'a self, opts: &'a ReconcileOptions) -> Option<(String, Waited<'a>)> {
        let polled = crate::redact::passwords(self.health.as_str());
        Some((polled, App::wait_applied(self, opts).boxed()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_order_lines_agree_with_the_contract() {
        use handover_contract::{LineItem, Order};
        let item = |p: &str, q: u32| LineItem {
            product: p.into(),
            quantity: q,
        };
        let orders = [
            vec![],
            vec![item("apple", 1)],
            vec![item("pear \"quoted\" é", 1000), item("x", 2), item("", 7)],
        ];
        for (i, line_items) in orders.into_iter().enumerate() {
            let order = Order {
                id: format!("o-{i}"),
                user_id: "user-1".into(),
                line_items,
                placed_at: "2024-01-01T00:00:00Z".into(),
                placed_by: "b".into(),
            };
            let json = serde_json::to_string(&order).unwrap();
            let line: OrderLine<'_> = serde_json::from_str(&json).unwrap();
            assert_eq!(line.view(), OrderView::from(&order), "{json}");
        }
        for bad in [
            r#"{"id":"x","user_id":"u","line_items":[],"placed_at":"t"}"#,
            r#"{"id":"x","user_id":"u","line_items":[{"product":"p"}],"placed_at":"t","placed_by":"b"}"#,
            r#"{"id":"x","user_id":"u","line_items":{},"placed_at":"t","placed_by":"b"}"#,
        ] {
            assert!(serde_json::from_str::<Order>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<OrderLine<'_>>(bad).is_err(), "{bad}");
        }
    }

    fn ndjson(ids: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for id in ids {
            out.extend_from_slice(
                format!(
                    r#"{{"id":"{id}","user_id":"u","line_items":[],"placed_at":"t","placed_by":"b"}}"#
                )
                .as_bytes(),
            );
            out.extend_from_slice(b"\r\n\n");
        }
        out
    }

    #[test]
    fn lines_straddling_chunks_are_joined_and_bad_lines_named() {
        use super::super::lines::Lines;
        let empty = || crate::reconcile::ledger::AckIndex::new().seal();
        let body = ndjson(&["a", "b", "c"]);
        for size in [1, 7, 64, body.len()] {
            let mut ledger = empty();
            let mut each = |line: &[u8]| take_order(line, &mut ledger);
            let mut lines = Lines::default();
            for chunk in body.chunks(size) {
                lines.feed(chunk, &mut each).unwrap();
            }
            lines.finish(&mut each).unwrap();
            assert_eq!(lines.taken(), 3, "chunk size {size}");
            assert_eq!(ledger.finish(10).never_sent, 3);
        }
        let mut body = ndjson(&["a"]);
        body.extend_from_slice(b"{\"id\":\"b\"}\n");
        let mut ledger = empty();
        let app = App::new(
            &Url::parse("http://b/").unwrap(),
            &ReconcileOptions::default(),
        )
        .unwrap();
        let mut lines = Lines::default();
        let err = lines
            .feed(&body, &mut |line: &[u8]| take_order(line, &mut ledger))
            .unwrap_err();
        let err = app.pump_error(PumpError::Line(err));
        assert!(
            err.to_string()
                .contains("/orders line 3 is not an order as NDJSON"),
            "{err}"
        );
    }

    #[test]
    fn urls_are_checked_and_secrets_hidden() {
        let opts = ReconcileOptions::default();
        let ftp = Url::parse("ftp://host/").unwrap();
        assert!(matches!(
            App::new(&ftp, &opts),
            Err(ReconcileError::BadUrl { .. })
        ));
        let secret = Url::parse("http://me:hunter2@127.0.0.1:9/base/").unwrap();
        let app = App::new(&secret, &opts).unwrap();
        assert!(!app.shown.contains("hunter2"));
        assert_eq!(app.health.path(), "/base/health");
        assert_eq!(app.orders.path(), "/base/orders");
    }
}
