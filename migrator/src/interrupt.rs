//! Ctrl-C during a cutover: the first one asks the current step to stop
//! safely (the rollback rules apply and the report is still written); a
//! second one ends the process at once, after ending the processes a
//! [`Reaper`] tracks.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::process::Reaper;

/// The exit code of a run ended by a second Ctrl-C (128 + SIGINT).
const FORCED: i32 = 130;

/// A token cancelled by the first Ctrl-C (or SIGTERM).
pub fn token(reaper: Option<Reaper>) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        handover_cli::shutdown::signal().await;
        eprintln!("interrupted: finishing the current step safely (Ctrl-C again to force)");
        t.cancel();
        let _ = tokio::signal::ctrl_c().await;
        force(reaper.as_ref());
    });
    token
}

/// The forced end (a second Ctrl-C, or a second `q` in the live view):
/// the processes `reaper` tracks are ended, then this one.
pub fn force(reaper: Option<&Reaper>) -> ! {
    feeder::view::screen::restore();
    if let Some(r) = reaper {
        r.reap(Duration::from_secs(2));
    }
    std::process::exit(FORCED);
}
