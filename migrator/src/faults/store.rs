//! `stop-store`, `restart-store`, `partition-b-store`: the event store goes
//! away (for a while). With `[store] stop` and `start` commands (a
//! PostgreSQL cluster's `pg_ctl`, `systemctl`) those run; a SQLite store
//! (`[store] url = "sqlite:PATH"`) is made unavailable by holding its write
//! lock, so every writer waits and then fails as it would behind a dead disk
//! or a stuck transaction. `partition-b-store` runs `[store] partition_b`
//! and, after the time given, `heal_b` (the two-host setup cuts B's link).

use std::time::Duration;

use futures::FutureExt;

use super::Fired;
use crate::plan::Plan;

/// Stops the store; brings it back after `down` (if given).
pub async fn stop(plan: &Plan, down: Option<Duration>) -> Result<Fired, String> {
    let s = &plan.store;
    if let Some(stop) = &s.stop {
        super::command::run(stop).await?;
        let Some(down) = down else {
            return Ok(Fired::now("store stopped ([store] stop); it stays down"));
        };
        let start = s
            .start
            .clone()
            .ok_or("restart-store needs [store] start (how to bring the store back)")?;
        return Ok(Fired {
            detail: format!(
                "store stopped ([store] stop) for {}",
                handover_cli::secs(down)
            ),
            later: Some(
                async move {
                    tokio::time::sleep(down).await;
                    match super::command::run(&start).await {
                        Ok(_) => "store started again ([store] start)".to_string(),
                        Err(e) => format!("store could not be started again: {e}"),
                    }
                }
                .boxed(),
            ),
        });
    }
    let path = s.sqlite_path().ok_or(
        "the store cannot be stopped: give [store] stop and start commands, or [store] url = \"sqlite:PATH\"",
    )?;
    let held = lock_sqlite(path.clone(), down).await?;
    Ok(Fired {
        detail: format!(
            "SQLite {}: write lock held{} (writers wait, then fail)",
            path.display(),
            down.map(|d| format!(" for {}", handover_cli::secs(d)))
                .unwrap_or_default()
        ),
        later: held,
    })
}

/// Takes the write lock of the SQLite file at `path` on a thread of its
/// own; releases it after `down` (the returned future ends then), or at
/// the process's exit when `down` is `None`.
async fn lock_sqlite(
    path: std::path::PathBuf,
    down: Option<Duration>,
) -> Result<Option<futures::future::BoxFuture<'static, String>>, String> {
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path)
            .and_then(|c| c.busy_timeout(Duration::from_secs(10)).map(|()| c))
            .and_then(|c| c.execute_batch("BEGIN IMMEDIATE").map(|()| c));
        let conn = match conn {
            Ok(c) => {
                let _ = locked_tx.send(Ok(()));
                c
            }
            Err(e) => {
                let _ = locked_tx.send(Err(format!("cannot lock {}: {e}", path.display())));
                return;
            }
        };
        match down {
            Some(d) => {
                std::thread::sleep(d);
                let _ = conn.execute_batch("ROLLBACK");
                drop(conn);
                let _ = done_tx.send(format!("SQLite {}: write lock released", path.display()));
            }
            // Held until the migrator exits.
            None => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
    });
    locked_rx
        .await
        .map_err(|_| "the lock holder stopped".to_string())??;
    Ok(down.map(|_| {
        async move {
            done_rx
                .await
                .unwrap_or_else(|_| "the lock holder stopped".into())
        }
        .boxed()
    }))
}

/// Cuts B off the store with `[store] partition_b`; heals it with `heal_b`
/// after `down` (if given).
pub async fn partition_b(plan: &Plan, down: Option<Duration>) -> Result<Fired, String> {
    let s = &plan.store;
    let cut = s
        .partition_b
        .as_ref()
        .ok_or("partition-b-store needs [store] partition_b (how to cut B off the store)")?;
    super::command::run(cut).await?;
    let Some(down) = down else {
        return Ok(Fired::now("B cut off the store ([store] partition_b)"));
    };
    let heal = s
        .heal_b
        .clone()
        .ok_or("partition-b-store:DURATION needs [store] heal_b (how to reconnect B)")?;
    Ok(Fired {
        detail: format!("B cut off the store for {}", handover_cli::secs(down)),
        later: Some(
            async move {
                tokio::time::sleep(down).await;
                match super::command::run(&heal).await {
                    Ok(_) => "B reconnected to the store ([store] heal_b)".to_string(),
                    Err(e) => format!("B could not be reconnected: {e}"),
                }
            }
            .boxed(),
        ),
    })
}
