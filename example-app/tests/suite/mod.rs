pub mod util;

pub mod cli;
pub mod contract;
pub mod faults;
pub mod fuzz;
pub mod http_api;
pub mod nats;
pub mod nats_cluster;
pub mod nats_servers;
pub mod pg_cluster;
pub mod postgres;
pub mod sqlite;
pub mod task_health;
