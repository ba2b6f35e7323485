//! The instance under reconciliation, over HTTP: its `/health` positions and
//! its `/orders` as an NDJSON stream (never buffered whole).

use std::time::{Duration, Instant};

use futures::StreamExt;
use std::borrow::Cow;

use handover_contract::{Health, ItemsDigest};
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use url::Url;

use bytes::Bytes;

use super::ledger::{Ledger, OrderView};
use super::{Progress, ReconcileError, ReconcileOptions};

/// A line of `/orders` longer than this is refused rather than buffered.
const MAX_LINE: usize = 1 << 20;

/// `http://user:secret@host/` → `http://user:***@host/`, for messages and reports.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// An error and its causes on one line (reqwest hides the useful part in `source`).
fn chain(e: &dyn std::error::Error) -> String {
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
            user_id: &self.user_id,
            items_digest: self.line_items,
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

pub struct App {
    http: reqwest::Client,
    shown: String,
    health: Url,
    orders: Url,
    idle_timeout: Duration,
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

    async fn health_once(&self, timeout: Duration) -> Result<Health, (bool, String)> {
        let resp = self
            .http
            .get(self.health.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| (e.is_connect(), chain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| (false, chain(&e)))?;
        // 503 while catching up still carries the document: positions are what count.
        serde_json::from_slice::<Health>(&body).map_err(|e| {
            let start = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            (
                false,
                format!("HTTP {status}, not a health document ({e}): {start:?}"),
            )
        })
    }

    /// Polls `/health` until `applied >= head`. The app must answer within a
    /// short grace period (else it is unreachable: bad input); after that,
    /// hiccups are retried until `apply_timeout`.
    pub async fn wait_applied(
        &self,
        opts: &ReconcileOptions,
    ) -> Result<(Health, Duration), ReconcileError> {
        let started = Instant::now();
        let deadline = started + opts.apply_timeout;
        let grace = started + opts.request_timeout.min(opts.apply_timeout);
        let mut last: Option<Health> = None;
        let mut last_error = String::new();
        loop {
            match self.health_once(opts.request_timeout).await {
                Ok(h) => {
                    if h.applied >= h.head {
                        return Ok((h, started.elapsed()));
                    }
                    if let Some(report) = &opts.progress {
                        report(&Progress::Applying {
                            applied: h.applied,
                            head: h.head,
                        });
                    }
                    tracing::debug!(
                        applied = h.applied,
                        head = h.head,
                        "waiting for B to apply the head"
                    );
                    last = Some(h);
                }
                Err((connect, reason)) => {
                    let never_answered = last.is_none();
                    if never_answered && (connect || Instant::now() >= grace) {
                        return Err(ReconcileError::Unreachable {
                            url: self.shown.clone(),
                            reason,
                        });
                    }
                    tracing::debug!(%reason, "health poll failed; retrying");
                    last_error = reason;
                }
            }
            if Instant::now() + opts.poll_interval > deadline {
                let (applied, head) = last.map(|h| (h.applied, h.head)).unwrap_or((0, 0));
                return Err(ReconcileError::ApplyTimeout {
                    url: self.shown.clone(),
                    waited_ms: started.elapsed().as_millis() as u64,
                    applied,
                    head,
                    last_error,
                });
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    /// Streams `GET /orders` as NDJSON into `ledger`; returns it and the
    /// count. Receiving (here) and parsing (on a blocking thread, fed through
    /// a short bounded channel) overlap, so a large set uses two cores while
    /// memory stays at a few chunks.
    pub async fn stream_orders(&self, ledger: Ledger) -> Result<(Ledger, u64), ReconcileError> {
        let url = self.shown.clone();
        let resp = self
            .http
            .get(self.orders.clone())
            .header(reqwest::header::ACCEPT, "application/x-ndjson")
            .send()
            .await
            .map_err(|e| ReconcileError::Unreachable {
                url: url.clone(),
                reason: chain(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ReconcileError::Http {
                url,
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let parser = tokio::task::spawn_blocking(move || {
            let mut lines = NdjsonOrders::new(url, ledger);
            while let Some(chunk) = rx.blocking_recv() {
                lines.feed(&chunk)?;
            }
            lines.finish()
        });
        let mut stream = resp.bytes_stream();
        let received: Result<(), ReconcileError> = loop {
            let chunk = match tokio::time::timeout(self.idle_timeout, stream.next()).await {
                Err(_) => {
                    break Err(ReconcileError::Stream {
                        url: self.shown.clone(),
                        reason: format!(
                            "no data for {:?} while reading /orders",
                            self.idle_timeout
                        ),
                    })
                }
                Ok(None) => break Ok(()),
                Ok(Some(Err(e))) => {
                    break Err(ReconcileError::Stream {
                        url: self.shown.clone(),
                        reason: chain(&e),
                    })
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            // A closed channel means the parser stopped on a bad line: its
            // error is the one to report.
            if tx.send(chunk).await.is_err() {
                break Ok(());
            }
        };
        drop(tx);
        let parsed = parser
            .await
            .map_err(|e| ReconcileError::Internal(format!("order parser task: {e}")))?;
        received?;
        parsed
    }
}

/// Splits NDJSON chunks into lines (a line may straddle chunks) and feeds
/// each order to the ledger.
struct NdjsonOrders {
    url: String,
    ledger: Ledger,
    pending: Vec<u8>,
    line_no: u64,
    count: u64,
}

impl NdjsonOrders {
    fn new(url: String, ledger: Ledger) -> Self {
        NdjsonOrders {
            url,
            ledger,
            pending: Vec::with_capacity(64 * 1024),
            line_no: 0,
            count: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), ReconcileError> {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.line_no += 1;
            if self.pending.is_empty() {
                self.take(&rest[..nl])?;
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(&rest[..nl]);
                self.take(&line)?;
                line.clear();
                self.pending = line;
            }
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE {
            return Err(ReconcileError::BadResponse {
                url: self.url.clone(),
                reason: format!(
                    "/orders line {} is longer than {MAX_LINE} bytes",
                    self.line_no + 1
                ),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(Ledger, u64), ReconcileError> {
        self.line_no += 1;
        let last = std::mem::take(&mut self.pending);
        self.take(&last)?;
        Ok((self.ledger, self.count))
    }

    fn take(&mut self, line: &[u8]) -> Result<(), ReconcileError> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        let order: OrderLine<'_> =
            serde_json::from_slice(line).map_err(|e| ReconcileError::BadResponse {
                url: self.url.clone(),
                reason: format!(
                    "/orders line {} is not an order as NDJSON ({e}); starts {:?}",
                    self.line_no,
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                ),
            })?;
        self.ledger.observe(order.view());
        self.count += 1;
        Ok(())
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
        let body = ndjson(&["a", "b", "c"]);
        for size in [1, 7, 64, body.len()] {
            let mut lines =
                NdjsonOrders::new("u".into(), super::super::ledger::AckIndex::new().seal());
            for chunk in body.chunks(size) {
                lines.feed(chunk).unwrap();
            }
            let (ledger, count) = lines.finish().unwrap();
            assert_eq!(count, 3, "chunk size {size}");
            assert_eq!(ledger.finish(10).never_sent, 3);
        }
        let mut body = ndjson(&["a"]);
        body.extend_from_slice(b"{\"id\":\"b\"}\n");
        let mut lines = NdjsonOrders::new("u".into(), super::super::ledger::AckIndex::new().seal());
        let err = lines.feed(&body).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
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
