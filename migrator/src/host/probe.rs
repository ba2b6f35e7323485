//! What a host is like, read by one small POSIX `sh` script — run here with
//! `sh -s`, or on A, B or the store over ssh — so the same facts come from
//! every machine the same way. The script prints `key=value` lines; a round
//! trip at its end measures the clock offset.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::ssh::{classify, HostError};

/// The script; `$1` the origin's port (or empty), `$2` the systemd unit,
/// `$3` a directory whose free space counts (or empty).
const SCRIPT: &str = r#"
port=$1 unit=$2 dir=$3
r() { [ -r "$1" ] && tr -s ' \t' ' ' <"$1" | head -n 1; }
echo "nofile_soft=$(ulimit -Sn)"
echo "nofile_hard=$(ulimit -Hn)"
echo "port_range=$(r /proc/sys/net/ipv4/ip_local_port_range)"
echo "somaxconn=$(r /proc/sys/net/core/somaxconn)"
echo "syn_backlog=$(r /proc/sys/net/ipv4/tcp_max_syn_backlog)"
echo "conntrack_max=$(r /proc/sys/net/netfilter/nf_conntrack_max)"
echo "conntrack_count=$(r /proc/sys/net/netfilter/nf_conntrack_count)"
if [ -n "$port" ] && command -v ss >/dev/null 2>&1; then
  pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
  if [ -n "$pid" ]; then
    echo "listener_pid=$pid"
    echo "listener_nofile=$(awk '/^Max open files/ {print $4}' /proc/"$pid"/limits 2>/dev/null)"
  fi
fi
if [ -n "$unit" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if [ "$(systemctl show -p LoadState --value "$unit" 2>/dev/null)" = loaded ]; then
    echo "unit_nofile=$(systemctl show -p LimitNOFILE --value "$unit" 2>/dev/null)"
  fi
fi
if [ -n "$dir" ]; then
  d=$dir
  while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
  echo "disk_dir=$d"
  echo "disk_free_kb=$(df -Pk "$d" 2>/dev/null | awk 'NR==2 {print $4}')"
fi
echo ready
read -r _
echo "clock_ns=$(date +%s%N)"
exit 0
"#;

/// One host's facts (absent where the host has no such file or tool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The soft open-file limit a process started from here inherits.
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    pub port_range: Option<(u64, u64)>,
    pub somaxconn: Option<u64>,
    pub syn_backlog: Option<u64>,
    pub conntrack_max: Option<u64>,
    pub conntrack_count: Option<u64>,
    /// The process listening on the origin's port, and its open-file limit.
    pub listener: Option<(u32, Option<u64>)>,
    /// The systemd unit's `LimitNOFILE`, when the unit is installed.
    pub unit_nofile: Option<u64>,
    /// Free bytes where the store's data directory is (or would be).
    pub disk_free: Option<(String, u64)>,
    /// The host's clock against ours, with the measurement's uncertainty.
    pub clock: Option<ClockOffset>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Their clock minus ours, in milliseconds.
    pub offset_ms: i64,
    /// Half the round trip: the offset is right within this.
    pub uncertainty_ms: i64,
}

/// What to look at on a host.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub port: Option<u16>,
    pub unit: String,
    pub dir: Option<String>,
}

impl Ask {
    fn args(&self) -> [String; 3] {
        [
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            self.unit.clone(),
            self.dir.clone().unwrap_or_default(),
        ]
    }
}

/// Runs the script on this machine.
pub async fn local(ask: &Ask) -> Result<Facts, HostError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-s").arg("--").args(ask.args());
    run(cmd, "this machine", Duration::from_secs(10), false).await
}

/// Runs the script on `target` through `ssh` (`argv`: the ssh invocation).
pub async fn remote(
    argv: &[String],
    host: &str,
    ask: &Ask,
    connect_timeout: Duration,
) -> Result<Facts, HostError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(HostError::Probe {
            host: host.into(),
            detail: "empty ssh command".into(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args).arg("sh -s --");
    for a in ask.args() {
        cmd.arg(crate::plan::shell_word(&a));
    }
    run(cmd, host, connect_timeout + Duration::from_secs(15), true).await
}

async fn run(
    mut cmd: Command,
    host: &str,
    limit: Duration,
    clock: bool,
) -> Result<Facts, HostError> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| HostError::Probe {
        host: host.into(),
        detail: format!("cannot run {:?}: {e}", cmd.as_std().get_program()),
    })?;
    let talk = async {
        let mut stdin = Some(child.stdin.take().ok_or("no stdin")?);
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut input = stdin.take().ok_or("no stdin")?;
        input
            .write_all(SCRIPT.as_bytes())
            .await
            .map_err(|e| format!("sending the probe: {e}"))?;
        stdin = Some(input);
        let mut lines = BufReader::new(stdout).lines();
        let mut text = String::new();
        let mut sent_at = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "ready" {
                sent_at = Some(now_ns());
                // The script's `read` returns on this line; then the end
                // of input lets the shell exit.
                if let Some(mut input) = stdin.take() {
                    let _ = input.write_all(b"\n").await;
                }
                continue;
            }
            if let (Some(t0), Some(v)) = (sent_at, line.strip_prefix("clock_ns=")) {
                let t1 = now_ns();
                if let Ok(theirs) = v.trim().parse::<i128>() {
                    text.push_str(&format!("clock_offset_ns={}\n", theirs - (t0 + t1) / 2));
                    text.push_str(&format!("clock_uncertainty_ns={}\n", (t1 - t0) / 2));
                }
                continue;
            }
            text.push_str(&line);
            text.push('\n');
        }
        Ok::<_, String>((text, sent_at.is_some()))
    };
    let talked = tokio::time::timeout(limit, talk).await;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), e.read_to_end(&mut buf)).await;
        stderr = String::from_utf8_lossy(&buf).into_owned();
    }
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    let code = match status {
        Ok(Ok(s)) => s.code(),
        _ => None,
    };
    match talked {
        Err(_) => Err(HostError::Unreachable {
            host: host.into(),
            detail: format!("no answer within {}", handover_cli::secs(limit)),
        }),
        Ok(Err(detail)) => Err(HostError::Probe {
            host: host.into(),
            detail,
        }),
        Ok(Ok((_, false))) => Err(classify(host, code, &stderr)),
        Ok(Ok((text, true))) => {
            let mut facts = parse(&text);
            if !clock {
                facts.clock = None;
            }
            Ok(facts)
        }
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Reads the script's `key=value` lines (unknown keys and empty values ignored).
pub fn parse(text: &str) -> Facts {
    let mut f = Facts::default();
    let mut listener_pid = None;
    let mut listener_nofile = None;
    let mut disk_dir = String::new();
    let mut clock = (None, None);
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let n = || number(v);
        match k {
            "nofile_soft" => f.nofile_soft = n(),
            "nofile_hard" => f.nofile_hard = n(),
            "port_range" => {
                let mut it = v.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
                f.port_range = it.next().zip(it.next());
            }
            "somaxconn" => f.somaxconn = n(),
            "syn_backlog" => f.syn_backlog = n(),
            "conntrack_max" => f.conntrack_max = n(),
            "conntrack_count" => f.conntrack_count = n(),
            "listener_pid" => listener_pid = v.parse::<u32>().ok(),
            "listener_nofile" => listener_nofile = n(),
            "unit_nofile" => f.unit_nofile = n(),
            "disk_dir" => disk_dir = v.to_string(),
            "disk_free_kb" => f.disk_free = n().map(|kb| (disk_dir.clone(), kb * 1024)),
            "clock_offset_ns" => clock.0 = v.parse::<i128>().ok(),
            "clock_uncertainty_ns" => clock.1 = v.parse::<i128>().ok(),
            _ => {}
        }
    }
    f.listener = listener_pid.map(|p| (p, listener_nofile));
    if let (Some(o), Some(u)) = clock {
        f.clock = Some(ClockOffset {
            offset_ms: (o / 1_000_000) as i64,
            uncertainty_ms: (u / 1_000_000) as i64,
        });
    }
    f
}

/// A limit as a number; `unlimited`/`infinity` as the largest.
fn number(v: &str) -> Option<u64> {
    match v {
        "unlimited" | "infinity" => Some(u64::MAX),
        _ => v.parse().ok(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_script_prints() {
        let f = parse(
            "nofile_soft=1024\nnofile_hard=unlimited\nport_range=32768 60999\nsomaxconn=4096\n\
             syn_backlog=\nconntrack_max=262144\nconntrack_count=12\nlistener_pid=42\n\
             listener_nofile=65536\nunit_nofile=infinity\ndisk_dir=/var/lib\n\
             disk_free_kb=2048\nclock_offset_ns=-3500000\nclock_uncertainty_ns=800000\nnoise\n",
        );
        assert_eq!(f.nofile_soft, Some(1024));
        assert_eq!(f.nofile_hard, Some(u64::MAX));
        assert_eq!(f.port_range, Some((32768, 60999)));
        assert_eq!(f.syn_backlog, None, "an empty value is absent");
        assert_eq!(f.listener, Some((42, Some(65536))));
        assert_eq!(f.unit_nofile, Some(u64::MAX));
        assert_eq!(f.disk_free, Some(("/var/lib".into(), 2048 * 1024)));
        assert_eq!(
            f.clock,
            Some(ClockOffset {
                offset_ms: -3,
                uncertainty_ms: 0
            })
        );
    }

    /// The script itself, on this machine: real `sh`, real `/proc`.
    #[tokio::test]
    async fn the_script_runs_here() {
        let ask = Ask {
            port: None,
            unit: "no-such-unit-here".into(),
            dir: Some("/tmp/does/not/exist/yet".into()),
        };
        let f = local(&ask).await.unwrap();
        assert!(f.nofile_soft.is_some(), "{f:?}");
        assert!(f.port_range.is_some(), "{f:?}");
        let (dir, free) = f.disk_free.clone().unwrap();
        assert_eq!(dir, "/tmp", "the nearest existing parent: {f:?}");
        assert!(free > 0);
        assert_eq!(f.unit_nofile, None);
    }
}
