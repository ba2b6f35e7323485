//! Reading the query's rows from PostgreSQL: a `READ ONLY` transaction, the
//! statement bound to a portal (a cursor) and fetched [`BATCH`] rows at a
//! time, so a table of any size is read in bounded memory. Every row must
//! come within the idle timeout; a connection lost part-way is a listing
//! that broke off, not bad input.

use futures::StreamExt;

use super::query::bind_run;
use super::row::{columns_ok, Cell, Row};
use super::SqlOrders;
use crate::reconcile::ReconcileError;
use crate::sources::reconcile::StoredOrders;
use crate::sources::{error_chain, SourceError};

/// Rows fetched from the portal at a time.
const BATCH: i32 = 5_000;

impl SqlOrders {
    /// Connects to PostgreSQL and drives the connection in the background.
    async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<tokio_postgres::Client, SourceError> {
        let connect = config.connect(tokio_postgres::NoTls);
        let (client, connection) = tokio::time::timeout(self.idle, connect)
            .await
            .map_err(|_| SourceError::Unreachable {
                key: "reconcile.url".into(),
                url: self.shown.clone(),
                reason: format!("no connection within {:?}", self.idle),
            })?
            .map_err(|e| SourceError::Unreachable {
                key: "reconcile.url".into(),
                url: self.shown.clone(),
                reason: self.scrub(&error_chain(&e)),
            })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "reconcile: postgres connection ended");
            }
        });
        Ok(client)
    }

    /// Runs the query on PostgreSQL, calling `each` per row until it says
    /// stop (`false`) or the rows end; returns the rows read.
    pub(super) async fn postgres_rows(
        &self,
        config: &tokio_postgres::Config,
        run: Option<&str>,
        mut each: impl FnMut(Row<'_>) -> Result<bool, SourceError>,
    ) -> Result<u64, ReconcileError> {
        let mut client = self.connect(config).await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|e| {
                self.failed("reconcile.url", "cannot start a read-only transaction", &e)
            })?;
        let sql = bind_run(&self.query, "$1::text");
        let stmt = tx
            .prepare(&sql)
            .await
            .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        columns_ok(stmt.columns().len())?;
        let run = run.unwrap_or_default();
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            if self.uses_run { vec![&run] } else { vec![] };
        let portal = tx
            .bind(&stmt, &params)
            .await
            .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        let mut count = 0u64;
        loop {
            let rows = tx
                .query_portal_raw(&portal, BATCH)
                .await
                .map_err(|e| self.broke(&e))?;
            futures::pin_mut!(rows);
            let mut in_batch = 0;
            loop {
                let row = match tokio::time::timeout(self.idle, rows.next()).await {
                    Err(_) => {
                        return Err(ReconcileError::Broke {
                            source_desc: self.describe(),
                            reason: format!("no row for {:?}", self.idle),
                        })
                    }
                    Ok(None) => break,
                    Ok(Some(row)) => row.map_err(|e| self.broke(&e))?,
                };
                in_batch += 1;
                count += 1;
                let id: Cell<'_> = row.try_get(0).map_err(|e| {
                    self.failed(
                        "reconcile.query",
                        &format!("row {count}, the id column"),
                        &e,
                    )
                })?;
                let content = match row.len() {
                    2 => Some(row.try_get::<_, Cell<'_>>(1).map_err(|e| {
                        self.failed(
                            "reconcile.query",
                            &format!("row {count}, the content column"),
                            &e,
                        )
                    })?),
                    _ => None,
                };
                if !each(Row {
                    number: count,
                    id,
                    content,
                })? {
                    return Ok(count);
                }
            }
            if in_batch < BATCH {
                return Ok(count);
            }
        }
    }

    fn broke(&self, e: &tokio_postgres::Error) -> ReconcileError {
        ReconcileError::Broke {
            source_desc: self.describe(),
            reason: self.scrub(&error_chain(e)),
        }
    }
}
