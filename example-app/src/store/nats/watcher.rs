//! Learns other instances' commits as they happen: a headers-only ordered
//! consumer from the head on, whose every delivery of another handle's event
//! raises the published head and wakes this process's subscribers (reported
//! as [`Task::Listener`]). This handle's own events (their [`ORIGIN`] header)
//! are the writer's to publish, after it has kept them for a subscriber; one
//! whose ack the writer never got is found by the subscribers' poll or the
//! next commit. Events themselves are read by the cursor; subscribers also
//! poll, so a watcher that is down costs latency, never an event.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::ORIGIN;
use crate::store::backend::Shared;
use crate::store::Task;

/// Follows the stream after `head` until `cancel`; reopens with a short
/// backoff (doubling while the servers stay away) when the consumer fails.
pub(super) async fn run(
    stream: stream::Stream,
    head: u64,
    origin: String,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    timeout: Duration,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_BACKOFF;
    let mut last = head;
    loop {
        let before = last;
        let session = follow(&stream, &mut last, &origin, &shared, timeout);
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = session => r,
        };
        if let Err(msg) = result {
            tracing::warn!(error = %msg, "nats head watcher down; reopening");
            shared.status.tasks.failed(Task::Listener, msg);
        }
        if last > before {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// One consumer's life: publishes the stream's head, then each delivery
/// of another handle's event.
async fn follow(
    stream: &stream::Stream,
    last: &mut u64,
    origin: &str,
    shared: &Shared,
    timeout: Duration,
) -> Result<(), String> {
    // Whatever committed while no consumer was open.
    let info = tokio::time::timeout(timeout, stream.get_info())
        .await
        .map_err(|_| format!("head: no answer within {timeout:?}"))?
        .map_err(|e| format!("head: {e}"))?;
    *last = (*last).max(info.state.last_sequence);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: *last + 1,
            },
            headers_only: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("consume: {e}"))?;
    shared.seen(Task::Listener, *last);
    loop {
        match messages.next().await {
            Some(Ok(msg)) => {
                let seq = msg
                    .info()
                    .map_err(|e| format!("message without metadata: {e}"))?
                    .stream_sequence;
                *last = (*last).max(seq);
                let own = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(ORIGIN))
                    .is_some_and(|v| v.as_str() == origin);
                if !own {
                    shared.seen(Task::Listener, seq);
                }
            }
            Some(Err(e)) => return Err(format!("consumer: {e}")),
            None => return Err("consumer ended".into()),
        }
    }
}
