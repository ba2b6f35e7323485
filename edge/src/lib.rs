//! A local stand-in for Cloudflare: the v4 DNS-records API and the proxy.
