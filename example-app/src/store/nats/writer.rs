//! The writer: publishes every append that queued up during the previous
//! batch at once (pipelined on the connection, acks awaited together), so a
//! batch costs about one round trip to a quorum, not one per append.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use futures::future::join_all;
use tokio::sync::mpsc;

use super::{event_of, KEY, KIND, ORIGIN};
use crate::store::backend::Shared;
use crate::store::group_commit::{gather, AppendRequest};
use crate::store::Task;

/// How often a writer that lost the servers checks whether they are back.
const RECHECK: Duration = Duration::from_millis(500);

/// How long a batch waits for its publish acks. An ack takes milliseconds
/// while the stream has a leader; when the leader dies, the publishes sent
/// to it are never acked, and a writer that waited the full append timeout
/// for them would send its next batch (to the new leader) that much later.
/// A late ack is an unknown outcome (503): a retry finds the event if it
/// was stored after all.
const ACK_WAIT: Duration = Duration::from_secs(1);

pub(super) struct Writer {
    js: jetstream::Context,
    stream: stream::Stream,
    prefix: String,
    /// This store handle's [`ORIGIN`] header value.
    origin: String,
    timeout: Duration,
    ack_wait: Duration,
}

/// One request's outcome: its position and, when its key already existed,
/// the stored payload; or why it failed (unknown outcome: 503).
type Outcome = Result<(u64, Option<String>), String>;

impl Writer {
    pub fn new(
        js: jetstream::Context,
        stream: stream::Stream,
        name: String,
        origin: String,
        timeout: Duration,
    ) -> Self {
        Writer {
            js,
            stream,
            prefix: format!("{name}.ev"),
            origin,
            timeout,
            ack_wait: ACK_WAIT.min(timeout),
        }
    }

    /// The subject that holds the one event of `(kind, key)`.
    fn subject(&self, kind: &str, key: &str) -> String {
        format!("{}.{}.{}", self.prefix, token(kind), token(key))
    }

    /// Publishes the batch; per request, in order, its outcome. Requests for
    /// a key already in the batch get the first one's event.
    async fn publish(&self, batch: &[AppendRequest]) -> Vec<Outcome> {
        // Per subject, its index among the unique publishes; per request,
        // that index and whether an earlier request has its key.
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut plan = Vec::with_capacity(batch.len());
        let mut unique = Vec::new();
        for req in batch {
            let subject = self.subject(&req.event.kind, &req.event.key);
            match first.get(&subject) {
                Some(&u) => plan.push((u, true)),
                None => {
                    first.insert(subject.clone(), unique.len());
                    plan.push((unique.len(), false));
                    unique.push((subject, &req.event));
                }
            }
        }
        // Send every publish before awaiting any ack: the leader stores them
        // in this order, and the acks come back together.
        let mut pending = Vec::with_capacity(unique.len());
        for (subject, event) in &unique {
            let mut headers = HeaderMap::new();
            headers.insert(KIND, event.kind.as_str());
            headers.insert(KEY, event.key.as_str());
            headers.insert(ORIGIN, self.origin.as_str());
            let msg = PublishMessage::build()
                .headers(headers)
                .payload(event.payload.clone().into_bytes().into())
                .expected_last_subject_sequence(0);
            pending.push(self.js.send_publish(subject.clone(), msg).await);
        }
        let acks = join_all(pending.into_iter().zip(&unique).map(
            |(sent, (subject, _))| async move {
                let ack = match sent {
                    Ok(ack) => tokio::time::timeout(self.ack_wait, ack.into_future())
                        .await
                        .unwrap_or_else(|_| Err(PublishErrorKind::TimedOut.into())),
                    Err(e) => Err(e),
                };
                match ack {
                    Ok(ack) => Ok((ack.sequence, None)),
                    // The subject already holds the key's event: return it.
                    Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                        self.existing(subject).await
                    }
                    Err(e) => Err(format!("publish: {e}")),
                }
            },
        ))
        .await;
        plan.into_iter()
            .map(|(u, repeat)| match &acks[u] {
                // A repeat in the batch gets the event its key's first
                // request holds, as an existing one.
                Ok((pos, stored)) if repeat => Ok((
                    *pos,
                    Some(
                        stored
                            .clone()
                            .unwrap_or_else(|| unique[u].1.payload.clone()),
                    ),
                )),
                other => other.clone(),
            })
            .collect()
    }

    /// The stored event on `subject`, as an existing key's outcome.
    async fn existing(&self, subject: &str) -> Outcome {
        let msg = tokio::time::timeout(
            self.timeout,
            self.stream.get_last_raw_message_by_subject(subject),
        )
        .await
        .map_err(|_| format!("existing event: no answer within {:?}", self.timeout))?
        .map_err(|e| format!("existing event: {e}"))?;
        let event =
            event_of(msg.sequence, Some(&msg.headers), &msg.payload).map_err(|e| e.to_string())?;
        Ok((event.position, Some(event.payload)))
    }

    /// Whether the stream answers (a leader with a quorum): what proves an
    /// idle writer that failed can commit again.
    async fn reachable(&self) -> bool {
        matches!(
            tokio::time::timeout(self.timeout, self.stream.get_info()).await,
            Ok(Ok(_))
        )
    }
}

/// A subject token for `raw`: itself when it is only letters, digits, `_`
/// and `-`; else `~` and its bytes in hex (a plain token never starts with
/// `~`, so the two forms cannot collide).
fn token(raw: &str) -> String {
    if !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return raw.to_string();
    }
    let mut out = String::with_capacity(1 + 2 * raw.len());
    out.push('~');
    for b in raw.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Publishes everything that queued up while the previous batch ran.
pub(super) async fn run(
    writer: Writer,
    mut rx: mpsc::Receiver<AppendRequest>,
    shared: Arc<Shared>,
    max_batch: usize,
) {
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(max_batch);
    let mut failing = false;
    loop {
        let first = tokio::select! {
            first = rx.recv() => match first {
                Some(first) => first,
                None => return,
            },
            // An idle writer that lost the servers proves they are back by
            // asking the stream: an instance kept out of traffic while
            // unhealthy would otherwise never write again to clear it.
            _ = tokio::time::sleep(RECHECK), if failing => {
                if writer.reachable().await {
                    shared.status.tasks.ok(Task::Writer);
                    failing = false;
                }
                continue;
            }
        };
        gather(&mut batch, first, &mut rx, max_batch);
        let started = Instant::now();
        let outcomes = writer.publish(&batch).await;
        let took = started.elapsed();
        // Committed requests are settled as one commit, failed ones with the
        // first failure (their outcome is unknown to them: 503).
        let mut done = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        let mut results = Vec::with_capacity(batch.len());
        let mut why = None;
        for (req, outcome) in batch.drain(..).zip(outcomes) {
            match outcome {
                Ok(r) => {
                    done.push(req);
                    results.push(r);
                }
                Err(e) => {
                    why.get_or_insert(e);
                    failed.push(req);
                }
            }
        }
        if !done.is_empty() {
            shared.settle(&mut done, Ok(results), took);
        }
        failing = why.is_some();
        if let Some(why) = why {
            tracing::warn!(error = %why, failed = failed.len(), "nats publish failed");
            shared.settle(&mut failed, Err(why), took);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn tokens_are_plain_or_hex_and_never_collide() {
        assert_eq!(token("ord-1_A"), "ord-1_A");
        assert_eq!(token("a.b"), "~612e62");
        assert_eq!(token(""), "~");
        assert_eq!(token("~61"), "~7e3631");
        assert_ne!(token("~61"), token("a"));
    }
}
