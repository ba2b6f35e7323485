//! Shell commands the plan names (start, stop, flip, read) and the processes
//! they leave running.
//!
//! Commands run with `sh -c` so a plan can say `ssh host docker run …` or
//! `systemctl start …` as a person would type it. A start command may also
//! keep running (a local process): it is then tracked by pid, its output goes
//! to a log file, and a [`Reaper`] can end it by pid on every exit path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run `{cmd}`: {source}")]
    /// `cmd` is kept with URL passwords masked: errors end up in reports.
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` did not finish within {}", handover_cli::secs(*.timeout))]
    Timeout { cmd: String, timeout: Duration },
    #[error("`{cmd}` failed ({status}){}", stderr_tail(.stderr))]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("cannot create log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn stderr_tail(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        let tail: String = t
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(": {tail}")
    }
}

/// Runs `cmd` to completion with a deadline; stdout on success.
pub async fn run_shell(cmd: &str, timeout: Duration) -> Result<String, ProcessError> {
    let child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            cmd: crate::redact::passwords(cmd),
            source,
        })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(|source| ProcessError::Spawn {
            cmd: crate::redact::passwords(cmd),
            source,
        })?,
        Err(_) => {
            return Err(ProcessError::Timeout {
                cmd: crate::redact::passwords(cmd),
                timeout,
            })
        }
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ProcessError::Failed {
            cmd: crate::redact::passwords(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A start command that was spawned; it may still be running.
pub struct Started {
    child: Child,
    pid: Option<u32>,
    pub log: PathBuf,
}

/// What a started command is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartState {
    Running,
    /// Exited 0: it started something else (a daemon, a container) and returned.
    Returned,
    /// Exited with an error: the start failed.
    Failed(String),
}

impl Started {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(cmd: &str, log: &Path, reaper: Option<&Reaper>) -> Result<Started, ProcessError> {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|source| ProcessError::Log {
                    path: log.to_path_buf(),
                    source,
                })
        };
        let out = open()?;
        let err = open()?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a Ctrl-C at the terminal reaches the
            // migrator, which then stops children in order, not all at once.
            .process_group(0)
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                cmd: crate::redact::passwords(cmd),
                source,
            })?;
        let pid = child.id();
        if let (Some(r), Some(pid)) = (reaper, pid) {
            r.track(pid);
        }
        Ok(Started {
            child,
            pid,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub fn state(&mut self) -> StartState {
        match self.child.try_wait() {
            Ok(None) => StartState::Running,
            Ok(Some(s)) if s.success() => StartState::Returned,
            Ok(Some(s)) => {
                StartState::Failed(format!("exited with {s}; see {}", self.log.display()))
            }
            Err(e) => StartState::Failed(format!("cannot wait for it: {e}")),
        }
    }

    /// The pid to put into a stop command, while the process still runs.
    pub fn running_pid(&mut self) -> Option<u32> {
        match self.state() {
            StartState::Running => self.pid,
            _ => None,
        }
    }

    /// Waits up to `timeout` for it to exit (after a stop command or signal).
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .is_ok()
    }
}

/// Sends `sig` to `pid`; false if there is no such process.
pub fn signal(pid: u32, sig: Signal) -> bool {
    match i32::try_from(pid) {
        Ok(p) if p > 0 => kill(Pid::from_raw(p), sig).is_ok(),
        _ => false,
    }
}

/// Is `pid` still there (zombies included)?
pub fn alive(pid: u32) -> bool {
    match i32::try_from(pid) {
        Ok(p) if p > 0 => kill(Pid::from_raw(p), None).is_ok(),
        _ => false,
    }
}

/// Pids to end when the owner goes away: SIGTERM, a grace period, SIGKILL.
/// Cloneable; the kill happens when [`Reaper::reap`] is called or the last
/// clone is dropped.
#[derive(Clone, Default)]
pub struct Reaper {
    pids: Arc<Mutex<Vec<u32>>>,
    /// Only the guard that owns the processes kills them on drop.
    owner: Option<Arc<ReapOnDrop>>,
}

struct ReapOnDrop {
    pids: Arc<Mutex<Vec<u32>>>,
}

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        reap_pids(&self.pids, Duration::from_secs(5));
    }
}

impl Reaper {
    /// A reaper that kills everything it tracks when the last clone drops.
    pub fn owning() -> Reaper {
        let pids = Arc::new(Mutex::new(Vec::new()));
        Reaper {
            pids: pids.clone(),
            owner: Some(Arc::new(ReapOnDrop { pids })),
        }
    }

    pub fn track(&self, pid: u32) {
        if let Ok(mut p) = self.pids.lock() {
            p.push(pid);
        }
    }

    pub fn tracked(&self) -> Vec<u32> {
        self.pids.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Ends every tracked process now (blocking up to `grace`).
    pub fn reap(&self, grace: Duration) {
        if self.owner.is_some() {
            reap_pids(&self.pids, grace);
        }
    }
}

fn reap_pids(pids: &Mutex<Vec<u32>>, grace: Duration) {
    let list: Vec<u32> = match pids.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    let live: Vec<u32> = list
        .into_iter()
        .filter(|p| signal(*p, Signal::SIGTERM))
        .collect();
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline && live.iter().any(|p| alive(*p) && !zombie(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in live {
        if alive(p) && !zombie(p) {
            signal(p, Signal::SIGKILL);
        }
    }
}

/// A zombie has exited and only waits to be collected by its parent.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_shell_reports_output_failure_and_timeout() {
        let out = run_shell("echo hello", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(out.trim(), "hello");
        let e = run_shell("echo oops >&2; exit 3", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("oops") && e.contains('3'), "{e}");
        let e = run_shell("sleep 5", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, ProcessError::Timeout { .. }), "{e}");
    }

    #[tokio::test]
    async fn started_processes_are_reaped_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let reaper = Reaper::owning();
        let mut s =
            Started::spawn("exec sleep 30", &dir.path().join("log"), Some(&reaper)).unwrap();
        assert_eq!(s.state(), StartState::Running);
        let pid = s.pid().unwrap();
        assert_eq!(reaper.tracked(), vec![pid]);
        drop(reaper);
        assert!(s.wait_exit(Duration::from_secs(10)).await);
        let mut f = Started::spawn("exit 4", &dir.path().join("log2"), None).unwrap();
        assert!(f.wait_exit(Duration::from_secs(10)).await);
        assert!(matches!(f.state(), StartState::Failed(_)));
    }
}
