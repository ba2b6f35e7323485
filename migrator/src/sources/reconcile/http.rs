//! `reconcile.kind = "http"`: the service's own listing over HTTP — JSON
//! pages (the items at `items_pointer`, the next page's URL at
//! `next_pointer` or in a `Link: <…>; rel="next"` header) or NDJSON (one
//! item per line, pages by `Link`). Each item's id is read at `id_pointer`,
//! its content digest at `digest_pointer`.
//!
//! Bounded memory: one page at a time (a JSON page whole, up to
//! [`MAX_PAGE`]; an NDJSON page streamed line by line). The URLs of the pages
//! read are remembered, so a listing whose next page is one already read
//! is an error, not an endless loop.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, ACCEPT, LINK};
use serde_json::Value;
use url::Url;

use super::item::{self, ItemError, ItemPointers};
use super::lines::{first_line, pump, LineError, PumpError, MAX_LINE};
use super::{HttpListing, ListFormat, StoredOrders, Streamed};
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::{ReconcileError, ReconcileOptions};
use crate::sources::{error_chain, SourceError};

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
            let read = self
                .page(ledger, &page, total == 0 && visited.len() == 1)
                .await?;
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

/// The items array of a JSON page.
fn items_of<'d>(doc: &'d Value, l: &HttpListing, page: &Url) -> Result<&'d [Value], SourceError> {
    let (key, at) = match &l.items_pointer {
        Some(p) => ("reconcile.items_pointer", p.as_str()),
        None => (KEY, ""),
    };
    let items = doc.pointer(at).ok_or_else(|| SourceError::Missing {
        key: key.into(),
        what: format!("{}: nothing at {at:?}", shown(page)),
    })?;
    items
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| SourceError::Unexpected {
            key: key.into(),
            what: format!(
                "{}: {} at {at:?} is not an array of items{}",
                shown(page),
                item::start(items),
                if l.items_pointer.is_none() {
                    " (set reconcile.items_pointer)"
                } else {
                    ""
                }
            ),
        })
}

/// Parses one JSON page, feeds its items into `ledger`; returns how many
/// and the next page's URL by `next_pointer`.
fn json_page(
    body: &[u8],
    page: &Url,
    l: &HttpListing,
    pointers: &ItemPointers,
    ledger: &mut Ledger,
) -> Result<(u64, Option<Url>), ReconcileError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| SourceError::Unexpected {
        key: KEY.into(),
        what: format!(
            "{} is not JSON ({e}); starts {:?}",
            shown(page),
            String::from_utf8_lossy(&body[..body.len().min(80)])
        ),
    })?;
    let items = items_of(&doc, l, page)?;
    for (i, v) in items.iter().enumerate() {
        let (id, digest) = item::read(v, pointers)
            .map_err(|e| e.at(&format!("{}, item {}", shown(page), i + 1)))?;
        ledger.observe(OrderView {
            id: &id,
            user_id: None,
            items_digest: digest,
        });
    }
    let next = match &l.next_pointer {
        Some(p) => next_at(&doc, p, page)?,
        None => None,
    };
    Ok((items.len() as u64, next))
}

/// The next page's URL at `pointer`: absent, null or "" ends the listing; a
/// relative URL is resolved against the page's.
fn next_at(doc: &Value, pointer: &str, page: &Url) -> Result<Option<Url>, SourceError> {
    let bad = |what: String| SourceError::Unexpected {
        key: "reconcile.next_pointer".into(),
        what: format!("{}: {what}", shown(page)),
    };
    match doc.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => page
            .join(s)
            .map(Some)
            .map_err(|e| bad(format!("{s:?} at {pointer:?} is not a URL ({e})"))),
        Some(other) => Err(bad(format!(
            "{} at {pointer:?} is not a URL string",
            item::start(other)
        ))),
    }
}

/// The `rel="next"` target of the `Link` headers, resolved against the page.
fn link_next(headers: &HeaderMap, page: &Url) -> Result<Option<Url>, ReconcileError> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        if let Some(target) = next_in_link(text) {
            return page.join(target).map(Some).map_err(|e| {
                ReconcileError::Source(SourceError::Unexpected {
                    key: KEY.into(),
                    what: format!(
                        "{}: Link header target {target:?} is not a URL ({e})",
                        shown(page)
                    ),
                })
            });
        }
    }
    Ok(None)
}

/// The target of the first link with `rel` `next` in one `Link` header
/// value (RFC 8288): `<…>; rel="next", <…>; rel="last"`.
fn next_in_link(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        let open = rest.find('<')?;
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let end = after.find('<').unwrap_or(after.len());
        let is_next = after[..end].split([';', ',']).any(|param| {
            param.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.trim());
        }
        rest = &after[end..];
    }
}

/// `, ids at "/key" look like "a", "b"` for the first two items.
fn sample_ids(items: &[Value], p: &ItemPointers) -> String {
    let ids: Vec<String> = items
        .iter()
        .take(2)
        .filter_map(|v| item::read(v, p).ok())
        .map(|(id, _)| format!("{id:?}"))
        .collect();
    if ids.is_empty() {
        return String::new();
    }
    let digest = match &p.digest {
        Some(d) => format!(", content at {d:?}"),
        None => String::new(),
    };
    format!(", ids at {:?} look like {}{digest}", p.id, ids.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn link_headers_name_the_next_page() {
        assert_eq!(
            next_in_link(
                r#"<https://x/items?page=2>; rel="next", <https://x/items?page=9>; rel="last""#
            ),
            Some("https://x/items?page=2")
        );
        assert_eq!(
            next_in_link(r#"</a?p=1>; rel="prev", </a?p=3>; rel=next"#),
            Some("/a?p=3")
        );
        assert_eq!(
            next_in_link(r#"<p4>; title="x"; REL="last next""#),
            Some("p4")
        );
        assert_eq!(next_in_link(r#"<p1>; rel="prev""#), None);
        assert_eq!(next_in_link("garbage"), None);
        let mut headers = HeaderMap::new();
        headers.append(LINK, r#"<https://x/>; rel="prev""#.parse().unwrap());
        headers.append(LINK, r#"<?page=3>; rel="next""#.parse().unwrap());
        let next = link_next(&headers, &url("http://h:1/list?page=2")).unwrap();
        assert_eq!(next, Some(url("http://h:1/list?page=3")));
    }

    fn listing(items: Option<&str>, next: Option<&str>, digest: Option<&str>) -> HttpListing {
        HttpListing {
            url: url("http://h/items"),
            format: ListFormat::Json,
            items_pointer: items.map(str::to_string),
            id_pointer: "/id".into(),
            digest_pointer: digest.map(str::to_string),
            next_pointer: next.map(str::to_string),
        }
    }

    fn pointers(l: &HttpListing) -> ItemPointers {
        ItemPointers {
            id: l.id_pointer.clone(),
            digest: l.digest_pointer.clone(),
        }
    }

    fn read_page(
        l: &HttpListing,
        doc: &Value,
    ) -> Result<(u64, Option<Url>, crate::reconcile::ReconcileReport), String> {
        let mut ledger = crate::reconcile::ledger::AckIndex::new().seal();
        let body = serde_json::to_vec(doc).unwrap();
        let (n, next) =
            json_page(&body, &l.url, l, &pointers(l), &mut ledger).map_err(|e| e.to_string())?;
        Ok((n, next, ledger.finish(10)))
    }

    #[test]
    fn json_pages_are_read_with_their_next_link() {
        let l = listing(Some("/data"), Some("/links/next"), Some("/body"));
        let doc = json!({"data": [{"id": "a", "body": 1}, {"id": 7, "body": "x"}], "links": {"next": "?page=2"}});
        let (n, next, r) = read_page(&l, &doc).unwrap();
        assert_eq!(n, 2);
        assert_eq!(next, Some(url("http://h/items?page=2")));
        assert_eq!(r.ids.unexpected, ["7", "a"]);
        for end in [
            json!({"data": [], "links": {"next": null}}),
            json!({"data": [], "links": {}}),
            json!({"data": [], "links": {"next": ""}}),
        ] {
            assert_eq!(read_page(&l, &end).unwrap().1, None, "{end}");
        }
        let err = read_page(&l, &json!({"data": [], "links": {"next": 3}})).unwrap_err();
        assert!(err.starts_with("reconcile.next_pointer:"), "{err}");
        // The page is the array when there is no items_pointer.
        let bare = listing(None, None, None);
        assert_eq!(read_page(&bare, &json!([{"id": "z"}])).unwrap().0, 1);
        let err = read_page(&bare, &json!({"items": []})).unwrap_err();
        assert!(
            err.contains("is not an array of items (set reconcile.items_pointer)"),
            "{err}"
        );
    }

    #[test]
    fn bad_pages_name_the_key_and_the_item() {
        let l = listing(Some("/data"), None, Some("/body"));
        let err = read_page(&l, &json!({"rows": []})).unwrap_err();
        assert!(err.starts_with("reconcile.items_pointer:"), "{err}");
        let err =
            read_page(&l, &json!({"data": [{"id": "a", "body": 1}, {"key": "b"}]})).unwrap_err();
        assert!(
            err.starts_with("reconcile.id_pointer: http://h/items, item 2: nothing at \"/id\""),
            "{err}"
        );
        let err = read_page(&l, &json!({"data": [{"id": {"x": 1}, "body": 1}]})).unwrap_err();
        assert!(err.contains("is not an id"), "{err}");
        let err = read_page(&l, &json!({"data": [{"id": "a"}]})).unwrap_err();
        assert!(err.starts_with("reconcile.digest_pointer:"), "{err}");
        let mut ledger = crate::reconcile::ledger::AckIndex::new().seal();
        let err = json_page(b"<html>", &l.url, &l, &pointers(&l), &mut ledger).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("reconcile.url: http://h/items is not JSON"),
            "{err}"
        );
        assert!(err.is_usage());
    }
}
