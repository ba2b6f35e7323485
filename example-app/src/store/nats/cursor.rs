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

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream;
use futures::StreamExt;

use super::event_of;
use crate::store::{StoreError, StoredEvent};

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
            Some(open) if open.next == start => open,
            _ => Open {
                next: start,
                messages: open_at(&self.stream, start).await?,
            },
        };
        let mut open = open;
        let mut out = Vec::new();
        while open.next <= upto {
            let msg = match open.messages.next().await {
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
            if seq < open.next {
                // A consumer recreated on a new leader that has not yet
                // applied what the old one delivered starts earlier than
                // asked (the server moves a start past its last sequence
                // back to it), and the client's own recreation of a
                // consumer that delivered nothing starts from 1: repeats of
                // what was already returned, with the same content.
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
