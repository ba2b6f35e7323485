//! A trivial origin for `scripts/bench-edge.sh`: answers every request with
//! 200, a two-byte body and `X-Instance`, over HTTP/1.1 keep-alive.
//!
//! `origin --listen 127.0.0.2:0 --instance a` prints
//! `{"event":"listening","addr":"ADDR","instance":"a"}` and serves until killed.

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

#[derive(Parser)]
struct Opts {
    #[arg(long, default_value = "127.0.0.2:0")]
    listen: SocketAddr,
    #[arg(long, default_value = "a")]
    instance: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let line = format!(
        r#"{{"event":"listening","addr":"{}","instance":"{}"}}"#,
        listener.local_addr()?,
        opts.instance
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let instance: &'static str = Box::leak(opts.instance.into_boxed_str());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(move |_req| async move {
                let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                resp.headers_mut().insert(
                    "x-instance",
                    hyper::header::HeaderValue::from_static(instance),
                );
                Ok::<_, Infallible>(resp)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
