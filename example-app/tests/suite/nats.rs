//! The store contract on `nats://` (JetStream), plus what only it has: one
//! event per key beyond the deduplication window, and a cluster that loses
//! a node under load.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use example_app::store::{EventStore, NewEvent};
use futures::future::join_all;

use super::contract;
use super::nats_servers::{self, NatsServers};
use super::util::*;

/// A fresh stream on the shared server; the server outlives the test only
/// while another test holds it.
fn stream() -> (Arc<NatsServers>, String) {
    let servers = nats_servers::shared();
    let url = servers.store_url();
    (servers, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_append_and_idempotency() {
    let (_s, url) = stream();
    contract::append_and_idempotency(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_two_writers_gap_free_and_converge() {
    let (_s, url) = stream();
    contract::two_writers_gap_free(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_many_appenders_every_subscriber_sees_each_once() {
    let (_s, url) = stream();
    contract::many_appenders_every_subscriber_sees_each_once(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_own_commits_interleaved_gap_free() {
    let (_s, url) = stream();
    contract::own_commits_interleaved_gap_free(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_same_id_on_two_instances() {
    let (_s, url) = stream();
    contract::same_id_on_two_instances(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_kill9_loses_no_ack() {
    let (_s, url) = stream();
    contract::kill9_loses_no_ack(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_group_commit_observable() {
    let (_s, url) = stream();
    contract::group_commit_observable(&url, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_bad_inputs_append_nothing() {
    let (_s, url) = stream();
    contract::bad_inputs_append_nothing(&url, &[]).await;
}

/// Six store handles (six writers, as six instances would have) append the
/// same 100 keys at once, each in its own order, twice: exactly one event
/// per key, every handle gets that event back, and a second round long
/// after the first, past the stream's deduplication window (made 1 s
/// here), appends nothing: uniqueness does not hang on that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_concurrent_duplicate_ids_one_event_each() {
    let (s, url) = stream();
    let (_, name) = url.rsplit_once('/').expect("stream in url");
    let servers = s.url.rsplit(['@', '/']).next().expect("servers");
    let first = servers.split(',').next().expect("a server");
    let client = async_nats::connect_with_options(first, nats_auth(&s.url))
        .await
        .expect("connect");
    async_nats::jetstream::new(client)
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![format!("{name}.ev.>")],
            duplicate_window: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .expect("create the stream with a 1 s window");
    let handles: Vec<Arc<dyn EventStore>> = join_all((0..6).map(|_| open_store(&url))).await;
    let keys: Vec<String> = (0..100).map(|i| format!("dup-{i}")).collect();
    let round = |tag: &'static str| {
        let (handles, keys) = (&handles, &keys);
        async move {
            join_all(handles.iter().enumerate().map(|(h, store)| async move {
                // Each handle in another order, so races land everywhere.
                let mut order: Vec<&String> = keys.iter().collect();
                order.rotate_left(h * 17 % keys.len());
                join_all(order.into_iter().map(|k| {
                    store.append(NewEvent {
                        kind: "OrderPlaced".into(),
                        key: k.clone(),
                        payload: format!("\"{tag}-{h}\""),
                    })
                }))
                .await
                .into_iter()
                .map(|r| r.expect("append"))
                .collect::<Vec<_>>()
            }))
            .await
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
        }
    };
    let first = round("first").await;
    assert_eq!(first.iter().filter(|a| a.created).count(), keys.len());
    let mut held: HashMap<&str, &example_app::store::StoredEvent> = HashMap::new();
    for a in &first {
        let e = held.entry(a.event.key.as_str()).or_insert(&a.event);
        assert_eq!(*e, &a.event, "two events returned for {}", a.event.key);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = round("second").await;
    assert!(second.iter().all(|a| !a.created), "a key appended twice");
    for a in &second {
        assert_eq!(held[a.event.key.as_str()], &a.event);
    }
    let events = all_events(&*handles[0]).await;
    assert_eq!(events.len(), keys.len(), "one event per key in the stream");
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=keys.len() as u64).collect::<Vec<_>>());
}

/// The user and password of a `nats://user:pass@servers` URL.
fn nats_auth(url: &str) -> async_nats::ConnectOptions {
    let creds = url
        .strip_prefix("nats://")
        .and_then(|r| r.split_once('@'))
        .map(|(c, _)| c);
    match creds.and_then(|c| c.split_once(':')) {
        Some((u, p)) => async_nats::ConnectOptions::with_user_and_password(u.into(), p.into()),
        None => async_nats::ConnectOptions::new(),
    }
}

/// A `nats://` URL that does not parse, or servers that do not answer:
/// exit 2 naming `--store`, the token never printed.
#[test]
fn bad_nats_urls_exit_2_naming_the_flag() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let unreachable = format!("nats://tok3n-s3cret@127.0.0.1:{dead}/S");
    for (url, want) in [
        ("nats://tok3n-s3cret@127.0.0.1:4222", "--store"),
        ("nats://tok3n-s3cret@127.0.0.1:4222/a.b", "stream name"),
        ("nats://tok3n-s3cret@h:99999/S", "bad port"),
        (unreachable.as_str(), "cannot connect"),
    ] {
        let (code, err) = super::cli::run_to_exit(&[
            "--listen",
            "127.0.0.1:0",
            "--store",
            url,
            "--connect-timeout",
            "2s",
        ]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains(want), "{url}: {err}");
        assert!(!err.contains("s3cret"), "token printed: {err}");
    }
}
