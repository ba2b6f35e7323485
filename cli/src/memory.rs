//! Memory settings a latency-bound process wants from the kernel.

/// Opts this process out of transparent huge pages.
///
/// mimalloc (the edge's and the app's allocator) marks its arenas for huge
/// pages and hands freed memory back after a second; faulting it in again
/// zeroes up to 2 MiB while a request waits (`clear_page_erms` under
/// `do_huge_pmd_anonymous_page` was most of the edge's CPU during a 24 ms
/// stall at 10,000 orders/s). Five interleaved `migrator demo --rate 10000`
/// runs each way: p99 10.4 → 6.9 ms and p99.9 36 → 21 ms (medians).
/// Turning off only mimalloc's request (its `no_thp` feature) did not help:
/// the process-wide opt-out did. Redis gives the same advice for the same
/// reason. One app instance under wrk kept its throughput (42,419 orders/s,
/// p99 5.1 ms) and holding 1,000,000 orders took 250 MB, not 290.
///
/// Affects only this process (and what it execs); a kernel without the
/// setting leaves things as they were, which is logged, not fatal.
pub fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "cannot opt out of transparent huge pages");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_ends_up_without_huge_pages() {
        super::no_transparent_huge_pages();
        assert_eq!(nix::sys::prctl::get_thp_disable(), Ok(true));
    }
}
