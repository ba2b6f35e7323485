//! The sample services as real processes on `127.0.0.1:0`: every endpoint,
//! idempotency and conflicts, the shared log of two kv instances and its
//! replication lag, pagination, `--lose-every`, SIGTERM with a request in
//! flight, bad flags and bad input. pg-orders runs against a real
//! PostgreSQL (`HANDOVER_TEST_PG_URL`, else one started by scripts/pg.sh).
#![allow(clippy::unwrap_used)]

mod kv;
mod orders;
mod pg;
mod util;
