//! What one page of an HTTP listing says: its items (a JSON page's array,
//! each item read where the plan's pointers say) and where the next page
//! is (`next_pointer`, or the `Link` header's `rel="next"`; a relative URL
//! is resolved against the page's).

use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

use super::super::item::{self, ItemPointers};
use super::super::HttpListing;
use super::{shown, KEY};
use crate::reconcile::ledger::{Ledger, OrderView};
use crate::reconcile::ReconcileError;
use crate::sources::SourceError;

/// The items array of a JSON page.
pub(super) fn items_of<'d>(
    doc: &'d Value,
    l: &HttpListing,
    page: &Url,
) -> Result<&'d [Value], SourceError> {
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
pub(super) fn json_page(
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
pub(super) fn link_next(headers: &HeaderMap, page: &Url) -> Result<Option<Url>, ReconcileError> {
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
pub(super) fn sample_ids(items: &[Value], p: &ItemPointers) -> String {
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
    use crate::sources::reconcile::ListFormat;
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
