//! `nats://host:4222[,host2…]/STREAM`: the event log as a NATS JetStream
//! stream, so the store can be a cluster of servers (R3: any one may fail).
//!
//! - Positions are the stream sequence: JetStream numbers every stored
//!   message 1, 2, 3, … in the order its leader stores them, and a rejected
//!   publish takes no number. Nothing is ever deleted from the stream, so the
//!   log is dense; a reader that finds a hole (a message removed by hand, a
//!   stream limit) reports it rather than skipping it.
//! - One event per `(kind, key)` for the life of the stream, not for a
//!   deduplication window (`Nats-Msg-Id` forgets after `duplicate_window`):
//!   each event goes to its own subject `STREAM.ev.<kind>.<key>`, published
//!   with `Nats-Expected-Last-Subject-Sequence: 0`, which the stream leader
//!   accepts only while that subject holds no message. A second instance
//!   publishing the same order is refused ("wrong last sequence") however
//!   much later it comes, and answers with the stored event instead.
//! - An append is acknowledged only after the publish ack, which the leader
//!   sends once a quorum of replicas has stored the message. With no quorum
//!   there is no ack: the append times out and the caller gets 503.
//! - Reads follow the stream with an ordered consumer ([`cursor`]); the head
//!   of other instances' commits comes from a headers-only ordered consumer
//!   ([`watcher`]).
//!
//! - `writer`: the group-committing publisher. The `nats://` URL itself is
//!   parsed in [`super::url::nats`], with the other stores' URLs.

mod cursor;
mod watcher;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::cursor::Cursor;
use super::backend::{Backend, Shared, Store};
use super::url::nats::{NatsAuth, NatsUrl};
use super::{StoreError, StoreOptions, StoredEvent};

/// Header naming an event's kind (the subject holds it encoded).
const KIND: &str = "Handover-Kind";
/// Header naming an event's key.
const KEY: &str = "Handover-Key";
/// Header naming the store handle (the process) that published an event, so
/// its watcher leaves the handle's own commits to the writer: the writer
/// keeps them for a local subscriber before it raises the head, while a
/// watcher that raised it first would send the subscriber to read them back.
const ORIGIN: &str = "Handover-Origin";

/// How long asking the stream for its head may take.
const HEAD_WAIT: Duration = Duration::from_secs(1);

/// The JetStream event store.
pub type NatsStore = Store<Nats>;

/// The reading side of a [`NatsStore`]; the writer and the head watcher run
/// beside it.
pub struct Nats {
    url: NatsUrl,
    stream: stream::Stream,
    cursor: tokio::sync::Mutex<Cursor>,
    shared: Arc<Shared>,
    /// Ends the watcher when the store is dropped.
    cancel: CancellationToken,
    timeout: Duration,
}

impl Store<Nats> {
    /// Connects within `opts.connect_timeout` and finds or creates the
    /// stream; unreachable servers or refused credentials are a configuration
    /// error.
    pub async fn open(url: &NatsUrl, opts: StoreOptions) -> Result<Self, StoreError> {
        let config_err = |msg: String| StoreError::Config(format!("{url}: {msg}"));
        let client = tokio::time::timeout(opts.connect_timeout, connect(url, &opts))
            .await
            .map_err(|_| {
                config_err(format!(
                    "no server answered within {:?}",
                    opts.connect_timeout
                ))
            })?
            .map_err(config_err)?;
        let mut js = jetstream::new(client);
        js.set_timeout(opts.append_timeout);
        let stream = tokio::time::timeout(opts.connect_timeout, open_stream(&js, url))
            .await
            .map_err(|_| {
                config_err(format!(
                    "no stream answer within {:?}",
                    opts.connect_timeout
                ))
            })?
            .map_err(config_err)?;
        let head = stream.cached_info().state.last_sequence;

        let shared = Arc::new(Shared::new(head));
        let cancel = CancellationToken::new();
        let origin = format!("{:016x}", rand::random::<u64>());
        let (tx, rx) = mpsc::channel(opts.max_batch.max(1) * 4);
        tokio::spawn(writer::run(
            writer::Writer::new(
                js,
                stream.clone(),
                url.stream.clone(),
                origin.clone(),
                opts.append_timeout,
            ),
            rx,
            shared.clone(),
            opts.max_batch.max(1),
        ));
        tokio::spawn(watcher::run(
            stream.clone(),
            head,
            origin,
            shared.clone(),
            cancel.clone(),
            opts.append_timeout,
        ));
        let backend = Nats {
            url: url.clone(),
            cursor: tokio::sync::Mutex::new(Cursor::new(stream.clone())),
            stream,
            shared: shared.clone(),
            cancel,
            timeout: opts.append_timeout,
        };
        Ok(Store::new(backend, tx, shared, opts.append_timeout))
    }
}

/// Connects to any of the servers; the client reconnects by itself later.
async fn connect(url: &NatsUrl, opts: &StoreOptions) -> Result<async_nats::Client, String> {
    let servers = url
        .servers
        .iter()
        .map(|s| format!("nats://{s}").parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad server address: {e}"))?;
    let mut options = async_nats::ConnectOptions::new()
        .name("handover-example-app")
        .connection_timeout(opts.connect_timeout)
        .request_timeout(Some(opts.append_timeout))
        .max_reconnects(None);
    options = match &url.auth {
        NatsAuth::None => options,
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => options.token(token.clone()),
    };
    // The client's errors name a server and a reason, never the credentials.
    options
        .connect(servers)
        .await
        .map_err(|e| format!("cannot connect: {e}"))
}

/// The subjects the stream of `name` holds.
fn subjects(name: &str) -> String {
    format!("{name}.ev.>")
}

/// Finds the stream, or creates it with the URL's replicas; an existing
/// stream must take our subjects and keep everything (no limits, no
/// discarding), or positions would not be dense.
async fn open_stream(js: &jetstream::Context, url: &NatsUrl) -> Result<stream::Stream, String> {
    let want = subjects(&url.stream);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: url.stream.clone(),
            subjects: vec![want.clone()],
            storage: stream::StorageType::File,
            num_replicas: url.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {}: {e}", url.stream))?;
    let config = &stream.cached_info().config;
    if !config.subjects.contains(&want) {
        return Err(format!(
            "stream {} exists with subjects {:?}, not {want:?}",
            url.stream, config.subjects
        ));
    }
    if config.max_messages > 0 || config.max_bytes > 0 || config.max_age > Duration::ZERO {
        return Err(format!(
            "stream {} has limits (max_msgs, max_bytes or max_age) that would drop events",
            url.stream
        ));
    }
    Ok(stream)
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Backend for Nats {
    const NAME: &'static str = "nats";

    fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        async move {
            let after = u64::try_from(after).unwrap_or(0);
            let limit = u64::try_from(limit).unwrap_or(0);
            // Read only up to a head known committed: then every message up
            // to it is on its way, and waiting for it cannot hang on an
            // empty stream.
            let mut known = self.shared.handoff.subscribe();
            let mut head = *known.borrow_and_update();
            if head <= after {
                // While the stream has no leader the question hangs for
                // HEAD_WAIT; a commit of this process's own meanwhile says
                // the stream is back, and where its head is, sooner.
                head = tokio::select! {
                    asked = self.read_head() => asked?,
                    Ok(()) = known.changed() => {
                        // A subscriber that has just caught up asks this
                        // question, and the commit that ends it is often
                        // its own: take that from memory, as the subscriber
                        // would have had it been waiting already.
                        let own = self
                            .shared
                            .handoff
                            .take_next(after, usize::try_from(limit).unwrap_or(usize::MAX));
                        if !own.is_empty() {
                            return Ok(own);
                        }
                        *known.borrow()
                    }
                };
            }
            let upto = head.min(after.saturating_add(limit));
            if upto <= after {
                return Ok(Vec::new());
            }
            let mut cursor = self.cursor.lock().await;
            tokio::time::timeout(self.timeout, cursor.read(after, upto))
                .await
                .unwrap_or_else(|_| {
                    cursor.reset();
                    Err(StoreError::Unavailable(format!(
                        "read: positions {}..={upto} not delivered within {:?}",
                        after + 1,
                        self.timeout
                    )))
                })
        }
        .boxed()
    }

    fn read_head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            // A request that reached a leader as it stepped down is never
            // answered; the follower waiting on it must not stall for the
            // whole append timeout (a stream info takes milliseconds).
            let wait = HEAD_WAIT.min(self.timeout);
            let info = tokio::time::timeout(wait, self.stream.get_info())
                .await
                .map_err(|_| StoreError::Unavailable(format!("head: no answer within {wait:?}")))?
                .map_err(|e| StoreError::Unavailable(format!("head: {e}")))?;
            Ok(info.state.last_sequence)
        }
        .boxed()
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }
}

/// The event a stored message carries; corrupt when it is not one of ours.
fn event_of(
    position: u64,
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
) -> Result<StoredEvent, StoreError> {
    let header = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
            .ok_or_else(|| StoreError::Corrupt(format!("message {position} has no {name} header")))
    };
    Ok(StoredEvent {
        position,
        kind: header(KIND)?,
        key: header(KEY)?,
        payload: String::from_utf8(payload.to_vec())
            .map_err(|_| StoreError::Corrupt(format!("message {position} is not UTF-8")))?,
    })
}
