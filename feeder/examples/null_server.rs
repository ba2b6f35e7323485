//! A trivial benchmark target: answers every request with 200, `{}` (or the
//! given body) and `X-Instance`, as fast as hyper can. Prints one JSON line
//! with its address. A body such as `{"instance":"n1"}` lets a template run
//! with `--instance-json /instance` be measured.
//!
//! `cargo run --release -p feeder --example null_server -- 127.0.0.1:0 [instance] [body]`

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::io::Write;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let instance = args.next().unwrap_or_else(|| "null".into());
    let body = Bytes::from(args.next().unwrap_or_else(|| "{}".into()));
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "{{\"event\":\"listening\",\"addr\":\"{addr}\",\"instance\":\"{instance}\"}}"
    )?;
    out.flush()?;
    let instance: &'static str = Box::leak(instance.into_boxed_str());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let body = body.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .header("x-instance", instance)
                        .body(Full::new(body))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
