//! (being written: the per-order reconciliation)

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReconcileReport {}
