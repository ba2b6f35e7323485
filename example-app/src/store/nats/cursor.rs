//! The read side: an ordered consumer on the stream, kept open between reads
//! so that a subscriber following the log costs one delivery per event, not
//! one request per read.
//!
//! An ordered consumer delivers the stream in sequence order and recreates
//! itself (from the last sequence it delivered) when it notices a lost
//! delivery; what it cannot know is whether a sequence is missing from the
//! stream itself. The cursor returns what was delivered and lets
//! [`crate::store::Subscription`] find holes; on any surprise it closes, and
//! the next read opens a fresh consumer where the caller really is.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream;
use futures::StreamExt;

use super::event_of;
use crate::store::{StoreError, StoredEvent};

/// How long a consumer may stay silent while committed events are due.
const STALL: Duration = Duration::from_secs(1);

/// How far behind the caller the open consumer may be and still be used.
const SKIP_MAX: u64 = 100_000;

pub(super) struct Cursor {
    stream: stream::Stream,
    open: Option<Open>,
}

/// A consumer whose next delivery is at `next`.
struct Open {
    next: u64,
    messages: pull::Ordered,
}

impl Cursor {
    pub fn new(stream: stream::Stream) -> Self {
        Cursor { stream, open: None }
    }

    /// Forgets the consumer (after a timeout that may have cut a read short).
    pub fn reset(&mut self) {
        self.open = None;
    }

    /// The events at `after + 1 ..= upto`, which must be committed: waits for
    /// each delivery. Ends early (and closes) at a sequence it did not expect.
    pub async fn read(&mut self, after: u64, upto: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let start = after + 1;
        let open = match self.open.take() {
            // Behind by what the caller took from memory (its own
            // commits): pass over them on this consumer rather than create
            // another; creating one is a cluster-wide operation.
            Some(open) if open.next <= start && start - open.next <= SKIP_MAX => open,
            _ => Open {
                next: start,
                messages: open_at(&self.stream, start).await?,
            },
        };
        let mut open = open;
        let mut out = Vec::new();
        while open.next <= upto {
            // The caller asks only for committed events, which come in
            // milliseconds; a consumer that stays silent was lost with its
            // server (the client notices only after two missed 15 s
            // heartbeats): drop it, and the next read opens another.
            let next = tokio::time::timeout(STALL, open.messages.next())
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!(
                        "read: position {} not delivered within {STALL:?}",
                        open.next
                    ))
                })?;
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    return Err(StoreError::Unavailable(format!("read: consumer: {e}")));
                }
                None => return Err(StoreError::Unavailable("read: consumer ended".into())),
            };
            let seq = msg
                .info()
                .map_err(|e| StoreError::Corrupt(format!("read: message without metadata: {e}")))?
                .stream_sequence;
            if seq < start {
                // Before what the caller asked for (passing over what it
                // has), or a repeat of what was already returned: a
                // consumer recreated on a new leader that has not yet
                // applied what the old one delivered starts earlier than
                // asked (the server moves a start past its last sequence
                // back to it), and the client's own recreation of a
                // consumer that delivered nothing starts from 1.
                open.next = open.next.max(seq + 1);
                continue;
            }
            if seq < open.next {
                // A repeat within this read (see above).
                continue;
            }
            out.push(event_of(
                seq,
                msg.message.headers.as_ref(),
                &msg.message.payload,
            )?);
            if seq != open.next {
                // A hole: the caller sees it in what we return.
                return Ok(out);
            }
            open.next = seq + 1;
        }
        self.open = Some(open);
        Ok(out)
    }
}

/// An ordered consumer whose first delivery is `start`.
async fn open_at(stream: &stream::Stream, start: u64) -> Result<pull::Ordered, StoreError> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read: create consumer: {e}")))?;
    consumer
        .messages()
        .await
        .map_err(|e| StoreError::Unavailable(format!("read: consume: {e}")))
}
