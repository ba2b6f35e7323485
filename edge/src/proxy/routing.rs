//! Routing one request: the Host header picks the record, a proxied A/AAAA
//! record's content picks the origin IP, the configured port completes it.
//! Hosts the edge cannot route are refused here, as DNS-side errors.

use super::error_page::EdgeError;
use crate::routes::{RouteCache, Routes, Target, Viewer};
use http::{header, Request};
use std::net::SocketAddr;
use std::time::Instant;

/// The Host header (or the absolute URI's host), lowercased, port stripped.
pub(super) fn host_of<B>(req: &Request<B>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())?;
    normalize_host(raw)
}

/// A Host header's value as routing matches it: lowercased, port and a
/// trailing dot stripped, IPv6 brackets removed; `None` when empty.
pub(super) fn normalize_host(raw: &str) -> Option<String> {
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        raw.rsplit_once(':').map(|(h, _)| h).unwrap_or(raw)
    };
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The origin for `host` in one routing decision (`viewer`: how the client
/// connection sees record changes; `cache`: its copy of the table), or why
/// there is none.
pub(super) fn origin_for(
    routes: &Routes,
    cache: &mut RouteCache,
    origin_port: u16,
    host: &str,
    now: Instant,
    viewer: Viewer,
) -> Result<SocketAddr, EdgeError> {
    match routes.resolve_in(cache, host, now, viewer) {
        Target::Origin(ip) => Ok(SocketAddr::new(ip, origin_port)),
        Target::NotProxied => Err(EdgeError::NotProxied),
        Target::Unroutable => Err(EdgeError::Unroutable),
        Target::Missing => Err(EdgeError::UnknownHost),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(host: &str) -> Request<()> {
        Request::builder().header("host", host).body(()).unwrap()
    }

    #[test]
    fn host_is_lowercased_and_port_stripped() {
        assert_eq!(
            host_of(&req("Shop.Handover.Test:8080")).unwrap(),
            "shop.handover.test"
        );
        assert_eq!(
            host_of(&req("shop.handover.test.")).unwrap(),
            "shop.handover.test"
        );
        assert_eq!(host_of(&req("[::1]:80")).unwrap(), "::1");
        let no_host = Request::builder().body(()).unwrap();
        assert!(host_of(&no_host).is_none());
    }

    #[test]
    fn unknown_hosts_are_refused() {
        let routes = Routes::new(std::time::Duration::ZERO);
        let mut cache = RouteCache::default();
        let err = origin_for(
            &routes,
            &mut cache,
            8080,
            "nope.test",
            Instant::now(),
            Viewer::at(0.5),
        )
        .unwrap_err();
        assert!(matches!(err, EdgeError::UnknownHost));
    }
}
