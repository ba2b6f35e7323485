//! Placing an order: the use case behind `POST /orders`, apart from HTTP.
//!
//! An order is checked against the domain rules and the known users, a retry
//! of an order already held is answered without an append (same content) or
//! refused (different content), and a new one is appended to the shared log.
//! The caller is answered only once this instance's projection has applied
//! the append, so its next read here sees the order (read-your-writes).

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use handover_contract::{NewOrder, Order};

use crate::domain::{self, Event, Invalid};
use crate::projection::Projection;
use crate::store::{EventStore, StoreError};

/// What placing an order needs: the shared log, this instance's projection,
/// and who places it.
pub struct Orders<'a> {
    pub store: &'a dyn EventStore,
    pub projection: &'a Projection,
    /// Recorded as the order's `placed_by`.
    pub instance: &'a str,
    /// How long to wait for the order's own event to be applied here.
    pub apply_timeout: Duration,
}

/// An order that is now in the log and applied here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// This request created it; the committed payload is the order's JSON,
    /// byte for byte what serializing the projection's copy gives.
    Created { payload: String },
    /// A retry with the content of the order already held under its id.
    Existing(Order),
}

/// Why an order was not placed, by who has to act.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The client must fix the order (shape, or a user nobody registered).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The client reused an id for a different order.
    #[error("order {id} exists with different content")]
    Conflict { id: String },
    /// The store did not take the append; the client may retry.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The order is committed but this instance has not applied it in time;
    /// a retry returns it.
    #[error("order committed at position {position} but not yet applied here; retry")]
    NotApplied { position: u64 },
    /// The projection applied the order's position but does not hold it: a
    /// bug in this instance, for its operators.
    #[error("position {position} applied but order {id} not found")]
    ProjectionMismatch { position: u64, id: String },
}

impl Orders<'_> {
    /// Places `new`, or answers a retry of it.
    pub async fn place(&self, new: &NewOrder) -> Result<Placed, PlaceError> {
        domain::validate(new)?;
        // A retry of an order this instance already holds needs no append.
        if let Some(stored) = self.projection.order(&new.id) {
            return existing(stored, new);
        }
        if !self.projection.has_user(&new.user_id) {
            return Err(Invalid::UnknownUser(new.user_id.clone()).into());
        }

        let order = Order {
            id: new.id.clone(),
            user_id: new.user_id.clone(),
            line_items: new.line_items.clone(),
            placed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            placed_by: self.instance.to_owned(),
        };
        let appended = self
            .store
            .append(Event::OrderPlaced(order).to_new_event())
            .await?;
        let position = appended.event.position;
        if !self
            .projection
            .wait_applied(position, self.apply_timeout)
            .await
        {
            return Err(PlaceError::NotApplied { position });
        }
        let mismatch = || PlaceError::ProjectionMismatch {
            position,
            id: new.id.clone(),
        };
        if appended.created {
            if !self.projection.has_order(&new.id) {
                return Err(mismatch());
            }
            // No rebuild, no re-encode: the committed payload is the reply.
            Ok(Placed::Created {
                payload: appended.event.payload,
            })
        } else {
            // Another request (here or on another instance) placed it first.
            let stored = self.projection.order(&new.id).ok_or_else(mismatch)?;
            existing(stored, new)
        }
    }
}

/// The stored order when the retry matches it, a conflict when it does not.
fn existing(stored: Order, new: &NewOrder) -> Result<Placed, PlaceError> {
    if domain::same_content(&stored, new) {
        Ok(Placed::Existing(stored))
    } else {
        Err(PlaceError::Conflict { id: new.id.clone() })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use handover_contract::LineItem;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::follower;
    use crate::import;
    use crate::store::{sqlite::SqliteStore, StoreOptions};

    /// A seeded SQLite store in a temp dir with its projection followed.
    struct Desk {
        _dir: tempfile::TempDir,
        store: Arc<dyn EventStore>,
        projection: Arc<Projection>,
        _follower: tokio_util::sync::DropGuard,
    }

    impl Desk {
        async fn new() -> Desk {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("events.db");
            let store: Arc<dyn EventStore> = Arc::new(
                SqliteStore::open(&path, StoreOptions::default())
                    .await
                    .expect("open store"),
            );
            let projection = Arc::new(Projection::new());
            let cancel = CancellationToken::new();
            tokio::spawn(follower::follow(
                store.clone(),
                projection.clone(),
                cancel.clone(),
            ));
            import::import(&*store, &projection, import::SEED)
                .await
                .expect("seed");
            follower::catch_up(&*store, &projection, Duration::from_secs(30))
                .await
                .expect("caught up");
            Desk {
                _dir: dir,
                store,
                projection,
                _follower: cancel.drop_guard(),
            }
        }

        fn orders(&self) -> Orders<'_> {
            Orders {
                store: &*self.store,
                projection: &self.projection,
                instance: "a",
                apply_timeout: Duration::from_secs(10),
            }
        }
    }

    fn order(id: &str, user: &str, quantity: u32) -> NewOrder {
        NewOrder {
            id: id.into(),
            user_id: user.into(),
            line_items: vec![LineItem {
                product: "apple".into(),
                quantity,
            }],
        }
    }

    #[tokio::test]
    async fn a_new_order_is_applied_before_it_is_answered() {
        let desk = Desk::new().await;
        let placed = desk
            .orders()
            .place(&order("o-1", "u-0001", 2))
            .await
            .expect("placed");
        let Placed::Created { payload } = placed else {
            panic!("not created: {placed:?}");
        };
        let held = desk.projection.order("o-1").expect("read-your-writes");
        assert_eq!(payload, serde_json::to_string(&held).expect("json"));
        assert_eq!(held.placed_by, "a");
    }

    #[tokio::test]
    async fn a_retry_is_answered_without_an_append_or_refused_if_different() {
        let desk = Desk::new().await;
        let orders = desk.orders();
        orders
            .place(&order("o-1", "u-0001", 2))
            .await
            .expect("placed");
        let head = desk.store.head().await.expect("head");
        match orders.place(&order("o-1", "u-0001", 2)).await {
            Ok(Placed::Existing(o)) => assert_eq!(o.id, "o-1"),
            other => panic!("{other:?}"),
        }
        match orders.place(&order("o-1", "u-0001", 3)).await {
            Err(e @ PlaceError::Conflict { .. }) => {
                assert_eq!(e.to_string(), "order o-1 exists with different content")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(desk.store.head().await.expect("head"), head, "no append");
    }

    #[tokio::test]
    async fn a_retry_racing_the_first_placement_meets_the_stored_order() {
        let desk = Desk::new().await;
        let seeded = desk.store.head().await.expect("head");
        // Another instance places o-9 ...
        let elsewhere = Orders {
            instance: "b",
            ..desk.orders()
        };
        elsewhere
            .place(&order("o-9", "u-0002", 1))
            .await
            .expect("placed");
        // ... while this one has applied only the seed, so it appends too.
        let projection = Projection::new();
        let seed = usize::try_from(seeded).expect("fits");
        projection.apply(&desk.store.read_after(0, seed).await.expect("read"));
        assert!(!projection.has_order("o-9"));
        let here = Orders {
            projection: &projection,
            ..desk.orders()
        };
        let catch_up = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            projection.apply(&desk.store.read_after(seeded, 10).await.expect("read"));
        };
        let retry = order("o-9", "u-0002", 1);
        let (same, ()) = tokio::join!(here.place(&retry), catch_up);
        match same {
            Ok(Placed::Existing(o)) => assert_eq!(o.placed_by, "b"),
            other => panic!("{other:?}"),
        }
        match here.place(&order("o-9", "u-0002", 5)).await {
            Err(PlaceError::Conflict { id }) => assert_eq!(id, "o-9"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn orders_breaking_the_rules_are_refused_before_the_store() {
        let desk = Desk::new().await;
        let head = desk.store.head().await.expect("head");
        let refused = [
            (order("bad id", "u-0001", 1), "invalid_id"),
            (order("o-1", "u-0001", 0), "invalid_line_items"),
            (order("o-1", "nobody", 1), "unknown_user"),
        ];
        for (new, code) in refused {
            match desk.orders().place(&new).await {
                Err(PlaceError::Invalid(e)) => assert_eq!(e.code(), code),
                other => panic!("{new:?}: {other:?}"),
            }
        }
        assert_eq!(desk.store.head().await.expect("head"), head, "no append");
    }

    #[tokio::test]
    async fn an_order_not_applied_in_time_says_where_it_was_committed() {
        let desk = Desk::new().await;
        // A projection nobody follows never applies the append.
        let projection = Projection::new();
        projection.apply(&desk.store.read_after(0, 10_000).await.expect("read"));
        let orders = Orders {
            projection: &projection,
            apply_timeout: Duration::from_millis(50),
            ..desk.orders()
        };
        let head = desk.store.head().await.expect("head");
        match orders.place(&order("o-1", "u-0001", 1)).await {
            Err(PlaceError::NotApplied { position }) => assert_eq!(position, head + 1),
            other => panic!("{other:?}"),
        }
    }
}
