//! `reconcile.kind = "http"`: the service's own listing over HTTP — JSON
//! pages (the items at `items_pointer`, the next page's URL at
//! `next_pointer` or in a `Link: <…>; rel="next"` header) or NDJSON (one
//! item per line, pages by `Link`). Each item's id is read at `id_pointer`,
//! its content digest at `digest_pointer`.
//!
//! Bounded memory: one page at a time (a JSON page whole, up to
//! [`MAX_PAGE`]; an NDJSON page streamed line by line). The URLs of the pages
//! read are remembered, so a listing whose next page is one already read
//! is an error, not an endless loop. [`page`] reads what one page says.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use reqwest::header::ACCEPT;
use serde_json::Value;
use url::Url;

mod page;

use super::item::{self, ItemError, ItemPointers};
use super::lines::{first_line, pump, LineError, PumpError, MAX_LINE};
use super::{HttpListing, ListFormat, StoredOrders, Streamed};
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::{ReconcileError, ReconcileOptions};
use crate::sources::{error_chain, SourceError};
use page::{items_of, json_page, link_next, sample_ids};

/// A JSON page larger than this is refused: ask the service for smaller pages.
pub const MAX_PAGE: usize = 64 << 20;

const KEY: &str = "reconcile.url";

/// An HTTP listing of what the service stores.
pub struct HttpOrders {
    http: reqwest::Client,
    listing: HttpListing,
    pointers: ItemPointers,
    idle: Duration,
}

/// What one page held: its items went into the ledger.
struct Page {
    ledger: Ledger,
    items: u64,
    next: Option<Url>,
}

/// Why a line of an NDJSON page was refused.
enum LineFault {
    NotJson(String),
    Item(ItemError),
}

impl HttpOrders {
    pub fn new(listing: HttpListing, opts: &ReconcileOptions) -> Result<Self, ReconcileError> {
        let http = reqwest::Client::builder()
            .connect_timeout(opts.request_timeout)
            .build()
            .map_err(|e| ReconcileError::Internal(error_chain(&e)))?;
        let pointers = ItemPointers {
            id: listing.id_pointer.clone(),
            digest: listing.digest_pointer.clone(),
        };
        Ok(HttpOrders {
            http,
            listing,
            pointers,
            idle: opts.request_timeout,
        })
    }

    /// The key a bad next-page link is about.
    fn next_key(&self) -> &'static str {
        match self.listing.next_pointer {
            Some(_) => "reconcile.next_pointer",
            None => KEY,
        }
    }

    /// GETs one page; anything but a 2xx reply is an error.
    async fn open(&self, page: &Url) -> Result<reqwest::Response, SourceError> {
        let shown = shown(page);
        let accept = match self.listing.format {
            ListFormat::Json => "application/json",
            ListFormat::Ndjson => "application/x-ndjson",
        };
        let unreachable = |reason: String| SourceError::Unreachable {
            key: KEY.into(),
            url: shown.clone(),
            reason,
        };
        let send = self.http.get(page.clone()).header(ACCEPT, accept).send();
        let resp = tokio::time::timeout(self.idle, send)
            .await
            .map_err(|_| unreachable(format!("no reply within {:?}", self.idle)))?
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let body = tokio::time::timeout(self.idle, resp.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let start = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(SourceError::Unexpected {
                key: KEY.into(),
                what: format!("{shown} answered HTTP {}: {start:?}", status.as_u16()),
            });
        }
        Ok(resp)
    }

    /// A JSON page's body, whole but at most [`MAX_PAGE`] bytes.
    async fn body(&self, resp: reqwest::Response, page: &Url) -> Result<Vec<u8>, ReconcileError> {
        let too_big = || {
            ReconcileError::Source(SourceError::Unexpected {
                key: KEY.into(),
                what: format!(
                    "{}: a page is larger than {} MiB; ask the service for smaller pages",
                    shown(page),
                    MAX_PAGE >> 20
                ),
            })
        };
        if resp.content_length().is_some_and(|n| n > MAX_PAGE as u64) {
            return Err(too_big());
        }
        let mut chunks = resp.bytes_stream();
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(self.idle, chunks.next()).await {
                Err(_) => return Err(self.broke(page, format!("no data for {:?}", self.idle))),
                Ok(None) => return Ok(body),
                Ok(Some(Err(e))) => return Err(self.broke(page, error_chain(&e))),
                Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            }
            if body.len() > MAX_PAGE {
                return Err(too_big());
            }
        }
    }

    fn broke(&self, page: &Url, reason: String) -> ReconcileError {
        ReconcileError::Broke {
            source_desc: self.describe(),
            reason: format!("{}: {reason}", shown(page)),
        }
    }

    /// Reads one page into `ledger`. `first`: nothing was read yet, so a
    /// page that cannot be fetched is a plan or service to fix; later, it
    /// is a listing that broke off.
    async fn page(&self, ledger: Ledger, page: &Url, first: bool) -> Result<Page, ReconcileError> {
        let resp = self.open(page).await.map_err(|e| match e {
            SourceError::Unreachable { .. } if !first => self.broke(page, e.to_string()),
            e => ReconcileError::Source(e),
        })?;
        let link_next = match self.listing.next_pointer {
            None => link_next(resp.headers(), page)?,
            Some(_) => None,
        };
        match self.listing.format {
            ListFormat::Json => {
                let body = self.body(resp, page).await?;
                let (listing, pointers, at) =
                    (self.listing.clone(), self.pointers.clone(), page.clone());
                let read = tokio::task::spawn_blocking(move || {
                    let mut ledger = ledger;
                    json_page(&body, &at, &listing, &pointers, &mut ledger).map(|(items, next)| {
                        Page {
                            ledger,
                            items,
                            next,
                        }
                    })
                });
                let mut read = read
                    .await
                    .map_err(|e| ReconcileError::Internal(format!("page parser task: {e}")))??;
                read.next = read.next.or(link_next);
                Ok(read)
            }
            ListFormat::Ndjson => {
                let chunks = resp.bytes_stream().map_err(|e| error_chain(&e));
                let pointers = self.pointers.clone();
                let parse = move |line: &[u8], ledger: &mut Ledger| -> Result<(), LineFault> {
                    let item: Value = serde_json::from_slice(line)
                        .map_err(|e| LineFault::NotJson(e.to_string()))?;
                    let (id, digest) = item::read(&item, &pointers).map_err(LineFault::Item)?;
                    ledger.observe(OrderView {
                        id: &id,
                        user_id: None,
                        items_digest: digest,
                    });
                    Ok(())
                };
                let (ledger, items) = pump(chunks, self.idle, ledger, parse)
                    .await
                    .map_err(|e| self.ndjson_error(page, e))?;
                Ok(Page {
                    ledger,
                    items,
                    next: link_next,
                })
            }
        }
    }

    fn ndjson_error(&self, page: &Url, e: PumpError<LineFault>) -> ReconcileError {
        let at = |line: u64| format!("{}, line {line}", shown(page));
        let unexpected = |what: String| {
            ReconcileError::Source(SourceError::Unexpected {
                key: KEY.into(),
                what,
            })
        };
        match e {
            PumpError::Idle(idle) => self.broke(page, format!("no data for {idle:?}")),
            PumpError::Broke(reason) => self.broke(page, reason),
            PumpError::Line(LineError::TooLong { line }) => {
                unexpected(format!("{}: longer than {MAX_LINE} bytes", at(line)))
            }
            PumpError::Line(LineError::Bad { line, error }) => match error {
                LineFault::NotJson(e) => unexpected(format!("{}: not JSON ({e})", at(line))),
                LineFault::Item(e) => ReconcileError::Source(e.at(&at(line))),
            },
            PumpError::Internal(reason) => ReconcileError::Internal(reason),
        }
    }

    async fn stream_all(&self, mut ledger: Ledger) -> Result<(Ledger, u64), ReconcileError> {
        let mut page = self.listing.url.clone();
        let mut visited = HashSet::from([page.clone()]);
        let mut total = 0;
        loop {
            let read = self.page(ledger, &page, visited.len() == 1).await?;
            ledger = read.ledger;
            total += read.items;
            let Some(next) = read.next else {
                return Ok((ledger, total));
            };
            if !visited.insert(next.clone()) {
                return Err(ReconcileError::Source(SourceError::Unexpected {
                    key: self.next_key().into(),
                    what: format!(
                        "{} names {} as the next page, which was read already: the listing loops",
                        shown(&page),
                        shown(&next)
                    ),
                }));
            }
            page = next;
        }
    }

    async fn check_first(&self) -> Result<String, SourceError> {
        let page = &self.listing.url;
        let resp = self.open(page).await?;
        let link = match self.listing.next_pointer {
            None => link_next(resp.headers(), page).map_err(source_only)?,
            Some(_) => None,
        };
        let (summary, next) = match self.listing.format {
            ListFormat::Json => {
                let body = self.body(resp, page).await.map_err(source_only)?;
                let mut ledger = crate::reconcile::ledger::AckIndex::new().seal();
                let (n, next) = json_page(&body, page, &self.listing, &self.pointers, &mut ledger)
                    .map_err(source_only)?;
                let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let ids = items_of(&doc, &self.listing, page)
                    .ok()
                    .map(|items| sample_ids(items, &self.pointers))
                    .unwrap_or_default();
                (format!("first page: {n} items{ids}"), next.or(link))
            }
            ListFormat::Ndjson => {
                let chunks = resp.bytes_stream().map_err(|e| error_chain(&e));
                let line = first_line::<_, LineFault>(chunks, self.idle)
                    .await
                    .map_err(|e| source_only(self.ndjson_error(page, e)))?;
                let summary = match line {
                    None => "first page: no items".to_string(),
                    Some(line) => {
                        let item: Value =
                            serde_json::from_slice(&line).map_err(|e| SourceError::Unexpected {
                                key: KEY.into(),
                                what: format!("{}, line 1: not JSON ({e})", shown(page)),
                            })?;
                        item::read(&item, &self.pointers)
                            .map_err(|e| e.at(&format!("{}, line 1", shown(page))))?;
                        format!(
                            "first line{}",
                            sample_ids(std::slice::from_ref(&item), &self.pointers)
                        )
                    }
                };
                (summary, link)
            }
        };
        let next = match next {
            Some(u) => format!("; next page {}", shown(&u)),
            None => "; no next page".into(),
        };
        Ok(format!("{summary}{next}"))
    }
}

impl StoredOrders for HttpOrders {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn describe(&self) -> String {
        let l = &self.listing;
        let format = match l.format {
            ListFormat::Json => "json",
            ListFormat::Ndjson => "ndjson",
        };
        let mut text = format!("http listing {} ({format}", shown(&l.url));
        if let Some(p) = &l.items_pointer {
            text.push_str(&format!(", items at {p:?}"));
        }
        text.push_str(&format!(", ids at {:?}", l.id_pointer));
        if let Some(p) = &l.digest_pointer {
            text.push_str(&format!(", content at {p:?}"));
        }
        match &l.next_pointer {
            Some(p) => text.push_str(&format!(", next page at {p:?})")),
            None => text.push_str(", next page by Link header)"),
        }
        text
    }

    fn check<'a>(&'a self, _run: Option<&'a str>) -> BoxFuture<'a, Result<String, SourceError>> {
        self.check_first().boxed()
    }

    fn stream<'a>(&'a self, ledger: Ledger, _run: Option<&'a str>) -> Streamed<'a> {
        self.stream_all(ledger).boxed()
    }
}

fn shown(url: &Url) -> String {
    crate::redact::passwords(url.as_str())
}

/// A check reports a [`SourceError`]; a broken stream during one is the
/// source being unreachable.
fn source_only(e: ReconcileError) -> SourceError {
    match e {
        ReconcileError::Source(e) => e,
        other => SourceError::Unexpected {
            key: KEY.into(),
            what: other.to_string(),
        },
    }
}
