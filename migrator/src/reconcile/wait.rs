//! Waiting for B to have applied the store head before its stored orders
//! are read: an order acknowledged just before the end is otherwise missed
//! by a B that is still catching up, and counted lost.
//!
//! One loop for every way of reading B's positions (the example app's
//! `/health`, any converge source): B must answer within a short grace
//! period (else it is unreachable: bad input), after which hiccups are
//! retried until `apply_timeout` (the run failed). Positions count only
//! while B is ready (its store reachable): a head B read before losing the
//! store may be behind what was committed since.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{Progress, ReconcileError, ReconcileOptions};
use crate::sources::converge::{ConvergeSource, Positions};
use crate::sources::SourceError;

/// Why one reading failed.
#[derive(Debug, Clone)]
pub struct PollError {
    /// Nothing answered at all (connection refused): no use waiting for
    /// the grace period before saying so.
    pub unreachable: bool,
    pub reason: String,
}

/// Polls `read` until `applied >= head`; `shown` names what is polled in
/// errors. Returns the last positions and the time waited.
pub async fn until_applied<F, Fut>(
    shown: &str,
    mut read: F,
    opts: &ReconcileOptions,
) -> Result<(Positions, Duration), ReconcileError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Positions, PollError>>,
{
    let started = Instant::now();
    let deadline = started + opts.apply_timeout;
    let grace = started + opts.request_timeout.min(opts.apply_timeout);
    let mut last: Option<Positions> = None;
    let mut last_error = String::new();
    loop {
        match read().await {
            Ok(p) => {
                // A head read while B cannot see the store is B's last view,
                // not the store's: a commit made meanwhile would be missed.
                if p.applied >= p.head && p.ready {
                    return Ok((p, started.elapsed()));
                }
                if let Some(report) = &opts.progress {
                    report(&Progress::Applying {
                        applied: p.applied,
                        head: p.head,
                    });
                }
                tracing::debug!(
                    applied = p.applied,
                    head = p.head,
                    "waiting for B to apply the head"
                );
                last = Some(p);
            }
            Err(PollError {
                unreachable,
                reason,
            }) => {
                let never_answered = last.is_none();
                if never_answered && (unreachable || Instant::now() >= grace) {
                    return Err(ReconcileError::Unreachable {
                        url: shown.to_string(),
                        reason,
                    });
                }
                tracing::debug!(%reason, "position poll failed; retrying");
                last_error = reason;
            }
        }
        if Instant::now() + opts.poll_interval > deadline {
            let (applied, head) = last.map(|p| (p.applied, p.head)).unwrap_or((0, 0));
            return Err(ReconcileError::ApplyTimeout {
                url: shown.to_string(),
                waited_ms: started.elapsed().as_millis() as u64,
                applied,
                head,
                last_error,
            });
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// [`until_applied`] over a converge source of the plan.
pub async fn converge_applied(
    source: &dyn ConvergeSource,
    opts: &ReconcileOptions,
) -> Result<(Positions, Duration), ReconcileError> {
    let shown = source.describe();
    until_applied(
        &shown,
        || async {
            source.read().await.map_err(|e| PollError {
                unreachable: matches!(e, SourceError::Unreachable { .. }),
                reason: e.to_string(),
            })
        },
        opts,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// Answers `script` in order, then repeats its last entry.
    struct Scripted {
        script: Vec<Result<(u64, u64), bool>>,
        at: AtomicU64,
    }

    impl ConvergeSource for Scripted {
        fn describe(&self) -> String {
            "scripted positions".into()
        }
        fn read(&self) -> BoxFuture<'_, Result<Positions, SourceError>> {
            let i = (self.at.fetch_add(1, Ordering::SeqCst) as usize).min(self.script.len() - 1);
            let answer = match self.script[i] {
                Ok((applied, head)) => Ok(Positions {
                    applied,
                    head,
                    ready: true,
                }),
                Err(true) => Err(SourceError::Unreachable {
                    key: "converge.applied".into(),
                    url: "http://b/metrics".into(),
                    reason: "connection refused".into(),
                }),
                Err(false) => Err(SourceError::Missing {
                    key: "converge.applied".into(),
                    what: "no metric applied_total".into(),
                }),
            };
            async move { answer }.boxed()
        }
    }

    fn scripted(script: Vec<Result<(u64, u64), bool>>) -> Scripted {
        Scripted {
            script,
            at: AtomicU64::new(0),
        }
    }

    fn options(apply_timeout_ms: u64) -> (ReconcileOptions, Arc<Mutex<Vec<Progress>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let opts = ReconcileOptions {
            apply_timeout: Duration::from_millis(apply_timeout_ms),
            poll_interval: Duration::from_millis(5),
            request_timeout: Duration::from_millis(40),
            progress: Some(Arc::new(move |p: &Progress| {
                sink.lock().unwrap().push(p.clone())
            })),
            ..ReconcileOptions::default()
        };
        (opts, seen)
    }

    #[tokio::test]
    async fn waits_through_lag_and_hiccups_until_the_head_is_applied() {
        let source = scripted(vec![Ok((3, 10)), Err(false), Ok((9, 12)), Ok((12, 12))]);
        let (opts, seen) = options(5_000);
        let (p, _) = converge_applied(&source, &opts).await.unwrap();
        assert_eq!((p.applied, p.head), (12, 12));
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            [
                Progress::Applying {
                    applied: 3,
                    head: 10
                },
                Progress::Applying {
                    applied: 9,
                    head: 12
                }
            ]
        );
    }

    #[tokio::test]
    async fn unreachable_at_first_is_bad_input_and_lag_forever_times_out() {
        let (opts, _) = options(5_000);
        let err = converge_applied(&scripted(vec![Err(true)]), &opts)
            .await
            .unwrap_err();
        assert!(matches!(err, ReconcileError::Unreachable { .. }), "{err}");
        assert!(err.is_usage());
        assert!(err.to_string().contains("scripted positions"), "{err}");

        // Never answering with positions: unreachable once the grace is over.
        let err = converge_applied(&scripted(vec![Err(false)]), &opts)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no metric applied_total"), "{err}");
        assert!(err.is_usage());

        let (opts, _) = options(100);
        let err = converge_applied(&scripted(vec![Ok((1, 5)), Err(false)]), &opts)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ReconcileError::ApplyTimeout { applied: 1, head: 5, ref last_error, .. } if last_error.contains("applied_total")),
            "{err}"
        );
        assert!(!err.is_usage());
    }

    /// The nemesis found it: with the store restarting, B said `applied 879,
    /// head 879` — its last view — while 880 had been committed meanwhile;
    /// reading B then counted order 880 lost. A head read while B cannot
    /// see the store does not end the wait.
    #[tokio::test]
    async fn positions_read_while_b_cannot_see_the_store_do_not_end_the_wait() {
        let (opts, _) = options(5_000);
        let mut reads = vec![
            Positions {
                applied: 879,
                head: 879,
                ready: false,
            },
            Positions {
                applied: 879,
                head: 880,
                ready: true,
            },
            Positions {
                applied: 880,
                head: 880,
                ready: true,
            },
        ]
        .into_iter();
        let read = || {
            let p = reads.next().unwrap_or(Positions {
                applied: 880,
                head: 880,
                ready: true,
            });
            async move { Ok::<_, PollError>(p) }
        };
        let (p, _) = until_applied("b", read, &opts).await.unwrap();
        assert_eq!((p.applied, p.head), (880, 880));
    }
}
