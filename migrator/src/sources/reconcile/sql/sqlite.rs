//! Reading the query's rows from SQLite: the file opened read-only, rows
//! stepped one by one (rusqlite blocks: the caller runs this on a blocking
//! thread). A write through the query is refused by SQLite itself.

use super::query::bind_run;
use super::row::{columns_ok, Cell, Row};
use super::SqlOrders;
use crate::sources::{error_chain, SourceError};

impl SqlOrders {
    /// Runs the query on SQLite (opened read-only) on this thread.
    pub(super) fn sqlite_rows(
        &self,
        path: &std::path::Path,
        run: Option<&str>,
        mut each: impl FnMut(Row<'_>) -> Result<bool, SourceError>,
    ) -> Result<u64, SourceError> {
        use rusqlite::types::ValueRef;
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| SourceError::Unreachable {
            key: "reconcile.url".into(),
            url: self.shown.clone(),
            reason: error_chain(&e),
        })?;
        conn.busy_timeout(self.idle)
            .map_err(|e| self.failed("reconcile.url", "cannot set a busy timeout", &e))?;
        let sql = bind_run(&self.query, "?1");
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        let columns = stmt.column_count();
        columns_ok(columns)?;
        let mut rows = match self.uses_run {
            true => stmt.query([run.unwrap_or_default()]),
            false => stmt.query(rusqlite::params![]),
        }
        .map_err(|e| self.failed("reconcile.query", "the query fails", &e))?;
        let mut count = 0;
        while let Some(row) = rows
            .next()
            .map_err(|e| self.failed("reconcile.query", &format!("row {}", count + 1), &e))?
        {
            count += 1;
            let cell = |i: usize| -> Result<Cell<'_>, SourceError> {
                let v = row
                    .get_ref(i)
                    .map_err(|e| self.failed("reconcile.query", &format!("row {count}"), &e))?;
                Ok(match v {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(n) => Cell::Int(n),
                    ValueRef::Real(f) => Cell::Real(f),
                    ValueRef::Text(t) => {
                        Cell::Text(std::str::from_utf8(t).map_err(|_| SourceError::Unexpected {
                            key: "reconcile.query".into(),
                            what: format!(
                                "{}: row {count}: column {} is not UTF-8 text",
                                self.shown,
                                i + 1
                            ),
                        })?)
                    }
                    ValueRef::Blob(_) => Cell::Other("a blob"),
                })
            };
            let id = cell(0)?;
            let content = if columns == 2 { Some(cell(1)?) } else { None };
            if !each(Row {
                number: count,
                id,
                content,
            })? {
                break;
            }
        }
        Ok(count)
    }
}
