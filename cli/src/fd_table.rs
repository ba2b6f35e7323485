//! The process's file-descriptor table, grown once at start.
//!
//! The kernel's table of open files starts at 64 slots and doubles when a
//! new descriptor does not fit. In a process with more than one thread the
//! doubling waits for an RCU grace period (`synchronize_rcu` in
//! `expand_fdtable`), and every other thread that opens a descriptor
//! meanwhile waits for it too, uninterruptibly. `perf record -e
//! sched:sched_switch -g` beside a 10,000/s demo: a 22.3 ms gap with no
//! slow commit under it was the edge's proxy thread 12.8 ms in `socket()`
//! → `alloc_fd` → `expand_files` → `synchronize_rcu`, its acceptor 9.4 ms
//! behind it in `accept4`; the feeder's and A's threads did the same when
//! their own connection counts crossed 128, 256 and 512. Grown before the
//! runtime starts its threads, the table needs no grace period, and it
//! never shrinks.

/// The table is grown to hold this many descriptors, or the open-file
/// limit if that is lower: 65,536 slots take about 530 KiB of kernel memory.
const SLOTS: u64 = 65_536;

/// Raises the soft open-file limit to the hard one (as Go's runtime does:
/// the usual 1,024 caps a server far below what a stall at thousands of
/// requests per second needs) and grows the descriptor table to cover it,
/// up to [`SLOTS`]. Call it before any thread starts; a kernel or limit
/// that refuses leaves things as they were, which is logged, not fatal.
pub fn grow() {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{fcntl, FcntlArg};
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) if hard > soft => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            {
                Ok(()) => hard,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot raise the open-file limit");
                    soft
                }
            },
            Ok((soft, _)) => soft,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the open-file limit");
                return;
            }
        };
        let Ok(last) = i32::try_from(limit.min(SLOTS).saturating_sub(1)) else {
            return;
        };
        // The lowest free descriptor at or above `last` (never one in use):
        // the table grows to hold it; closing it keeps the table.
        match fcntl(2, FcntlArg::F_DUPFD_CLOEXEC(last)) {
            Ok(fd) => {
                if let Err(e) = nix::unistd::close(fd) {
                    tracing::debug!(error = %e, "cannot close the descriptor that grew the table");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot grow the descriptor table"),
        }
    }
}

/// This process's descriptor table size (`FDSize` in /proc/self/status).
#[cfg(all(test, target_os = "linux"))]
fn table_size() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_the_limit_or_65536_descriptors() {
        grow();
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .expect("limit");
        let size = table_size().expect("FDSize in /proc/self/status");
        assert!(size >= soft.min(SLOTS), "table {size}, limit {soft}");
    }
}
