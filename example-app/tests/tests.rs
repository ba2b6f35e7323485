//! example-app's integration tests: real `example-app` processes on
//! `127.0.0.1:0`, real stores. The store contract is one suite of functions
//! taking a store URL, run once per backend.
#![allow(clippy::unwrap_used)]

mod suite;
