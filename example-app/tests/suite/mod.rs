pub mod util;

pub mod cli;
pub mod contract;
pub mod http_api;
pub mod sqlite;
