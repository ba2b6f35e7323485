//! Small in-process HTTP origins on loopback addresses.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How a test origin answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// 200 with `X-Instance` and the instance id as the body.
    Answer,
    /// Accepts and reads the request but never answers.
    Stall,
    /// Answers like `Answer`, after this delay.
    Slow(Duration),
}

/// An in-process HTTP origin; every connection dies with it.
pub struct Origin {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    stop: tokio_util::sync::CancellationToken,
}

impl Origin {
    pub async fn start(
        listener: TcpListener,
        instance: &'static str,
        behaviour: Behaviour,
    ) -> Origin {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&hits);
        let stop = tokio_util::sync::CancellationToken::new();
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopping.cancelled() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let counter = Arc::clone(&counter);
                let stopping = stopping.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let counter = Arc::clone(&counter);
                        async move {
                            counter.fetch_add(1, Ordering::Relaxed);
                            // The whole request first, as an app that parses
                            // it does: answering before a streamed body is in
                            // closes the connection under the sender's writes.
                            let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                            match behaviour {
                                Behaviour::Stall => {
                                    tokio::time::sleep(Duration::from_secs(3600)).await
                                }
                                Behaviour::Slow(d) => tokio::time::sleep(d).await,
                                Behaviour::Answer => {}
                            }
                            let resp = hyper::Response::builder()
                                .header("x-instance", instance)
                                .header("server", "test-origin")
                                .body(Full::new(Bytes::from_static(instance.as_bytes())))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopping.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
                while conns.try_join_next().is_some() {}
            }
            // Graceful stop: the listener is closed; let in-flight requests finish.
            drop(listener);
            while conns.join_next().await.is_some() {}
        });
        Origin {
            addr,
            hits,
            task,
            stop,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Like the example-app's SIGTERM: stop accepting, finish in-flight
    /// requests, close every connection.
    pub async fn stop(self) {
        self.stop.cancel();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.task.is_finished() {
            assert!(Instant::now() < deadline, "origin did not stop");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes the listener and every open connection at once.
    pub async fn kill(self) {
        self.task.abort();
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the same free port on 127.0.0.2 and 127.0.0.3.
pub async fn twin_listeners() -> (TcpListener, TcpListener) {
    for _ in 0..100 {
        let a = TcpListener::bind("127.0.0.2:0")
            .await
            .expect("bind 127.0.0.2");
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = TcpListener::bind(SocketAddr::new(IpAddr::from([127, 0, 0, 3]), port)).await
        {
            return (a, b);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}
