//! Checks of this host against the planned load: a migration that fails
//! because the driver ran out of file descriptors or ports proves nothing.
//! Findings are warnings unless the host clearly cannot carry the load.

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub fatal: bool,
    pub message: String,
}

/// The limits read from `/proc` (absent where the file is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub open_files: Option<u64>,
    pub port_range: Option<(u64, u64)>,
    pub conntrack_max: Option<u64>,
}

impl Limits {
    pub fn read() -> Limits {
        let open_files = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| parse_open_files(&s));
        let port_range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().filter_map(|n| n.parse::<u64>().ok());
                Some((it.next()?, it.next()?))
            });
        let conntrack_max = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Limits {
            open_files,
            port_range,
            conntrack_max,
        }
    }
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Judges `limits` against `concurrency` (the feeder's in-flight cap: at worst
/// one socket each) and `rate` (new connections per second if keep-alive fails).
pub fn judge(limits: &Limits, concurrency: u64, rate: f64) -> Vec<Finding> {
    let mut out = Vec::new();
    let need = concurrency.saturating_add(64);
    if let Some(n) = limits.open_files {
        if n < 128 {
            out.push(Finding {
                fatal: true,
                message: format!("open-file limit is {n}: too low to drive any load (ulimit -n)"),
            });
        } else if n < need {
            out.push(Finding {
                fatal: false,
                message: format!(
                    "open-file limit {n} is below the in-flight cap {concurrency}: a stall could exhaust it (raise ulimit -n)"
                ),
            });
        }
    }
    if let Some((lo, hi)) = limits.port_range {
        let ports = hi.saturating_sub(lo) + 1;
        // Closed sockets linger in TIME_WAIT for ~60 s.
        let churn = (rate * 60.0) as u64;
        if ports < concurrency {
            out.push(Finding {
                fatal: false,
                message: format!(
                    "ephemeral port range {lo}-{hi} ({ports} ports) is smaller than the in-flight cap {concurrency}"
                ),
            });
        } else if ports < churn {
            out.push(Finding {
                fatal: false,
                message: format!(
                    "ephemeral port range {lo}-{hi} ({ports} ports) would run out within a minute if connections were not reused at {rate}/s"
                ),
            });
        }
    }
    if let Some(max) = limits.conntrack_max {
        if max < concurrency.saturating_mul(2) {
            out.push(Finding {
                fatal: false,
                message: format!(
                    "nf_conntrack_max {max} is low for {concurrency} concurrent connections"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_open_file_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files(text), Some(1024));
    }

    #[test]
    fn judges_against_the_load() {
        let roomy = Limits {
            open_files: Some(1 << 20),
            port_range: Some((1024, 65535)),
            conntrack_max: Some(1 << 20),
        };
        assert!(judge(&roomy, 2000, 1000.0).is_empty());
        let tight = Limits {
            open_files: Some(1024),
            port_range: Some((60000, 60999)),
            conntrack_max: Some(1000),
        };
        let f = judge(&tight, 2000, 1000.0);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().all(|x| !x.fatal));
        let hopeless = Limits {
            open_files: Some(64),
            ..Limits::default()
        };
        assert!(judge(&hopeless, 10, 1.0)[0].fatal);
    }
}
