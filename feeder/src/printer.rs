//! Human output: the per-second line, instance events and the summary. Pure:
//! everything writes to `&mut dyn Write` so it is tested on a buffer. Colour
//! comes from the workspace's one [`Style`] (plain under `NO_COLOR` or a pipe).

use crate::aggregate::{Interval, Second};
use crate::handover::Event;
use handover_cli::Style;
use handover_contract::FeederReport;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// A count, dim when zero, else painted by `nonzero` (good, bad or warn).
fn count(st: &Style, n: u64, nonzero: fn(&Style, u64) -> String) -> String {
    if n == 0 {
        st.dim(n)
    } else {
        nonzero(st, n)
    }
}

/// One line per second: sent, ok, rejected, indeterminate, missed, p50/p99 of
/// the second, and the share of replies per instance.
pub fn second(out: &mut dyn Write, st: &Style, s: &Second) -> io::Result<()> {
    let shares = shares(&s.by_instance, |inst, _, pct| format!("{inst} {pct:.0}%"));
    writeln!(
        out,
        "{:>5}s  sent {:>6}  ok {:>6}  rejected {}  indeterminate {}  missed {}  in-flight {}  p50 {:>8}  p99 {:>8}  {}",
        s.index,
        s.sent,
        count(st, s.ok, |st, n| st.good(n)),
        count(st, s.rejected, |st, n| st.bad(n)),
        count(st, s.indeterminate, |st, n| st.bad(n)),
        count(st, s.missed, |st, n| st.warn(n)),
        s.in_flight,
        ms(s.p50_ms),
        ms(s.p99_ms),
        shares.join("  "),
    )
}

/// An instance event, printed once when it happens. `t0_ns` anchors the
/// relative times.
pub fn event(out: &mut dyn Write, st: &Style, ev: &Event, t0_ns: u64) -> io::Result<()> {
    let rel = |ns: u64| format!("{:.3}s", ns.saturating_sub(t0_ns) as f64 / 1e9);
    match ev {
        Event::Change { from, to, at_ns } => writeln!(
            out,
            "{} {from} → {to} at {}",
            st.event("instance change:"),
            rel(*at_ns)
        ),
        Event::OverlapEnded {
            from,
            to,
            first_new_ns,
            last_old_ns,
            overlap_ms,
        } => {
            if *overlap_ms > 0.0 {
                writeln!(
                    out,
                    "{} {from} and {to} both answered for {} (first {to} at {}, last {from} at {})",
                    st.event("overlap ended:"),
                    ms(*overlap_ms),
                    rel(*first_new_ns),
                    rel(*last_old_ns)
                )
            } else {
                writeln!(
                    out,
                    "{} no overlap: last {from} at {}, first {to} at {} ({} apart)",
                    st.event("overlap ended:"),
                    rel(*last_old_ns),
                    rel(*first_new_ns),
                    ms(first_new_ns.saturating_sub(*last_old_ns) as f64 / 1e6)
                )
            }
        }
    }
}

/// The end-of-run summary, classic result line first.
/// A wait inside the feeder worth saying (below it: pacing jitter).
const QUEUED_NOTE_MS: f64 = 5.0;

pub fn summary(
    out: &mut dyn Write,
    st: &Style,
    r: &FeederReport,
    steady_p99: Option<Interval>,
) -> io::Result<()> {
    // Missed slots never reached the server: the classic line counts them
    // as failed, as a client would.
    let failed = r.rejected + r.indeterminate + r.missed;
    let failed_txt = if failed == 0 {
        st.good(format!("failed = {failed}"))
    } else {
        st.bad(format!("failed = {failed}"))
    };
    writeln!(out, "result: {failed_txt} succeeded = {}", r.ok)?;
    writeln!(
        out,
        "  sent {}  ok {}  rejected {}  indeterminate {}  missed {}",
        r.sent,
        r.ok,
        r.rejected,
        r.indeterminate,
        count(st, r.missed, |st, n| st.warn(n))
    )?;
    let pct = if r.target_rate > 0.0 {
        100.0 * r.achieved_rate / r.target_rate
    } else {
        0.0
    };
    write!(
        out,
        "  rate: achieved {:.1}/s of target {:.1}/s ({pct:.1}%) over {:.3}s",
        r.achieved_rate,
        r.target_rate,
        r.duration_ms as f64 / 1000.0
    )?;
    match r.rate_per_second {
        Some(s) => writeln!(out, "; per second mean {:.1} sd {:.1}", s.mean, s.stddev)?,
        None => writeln!(out)?,
    }
    let l = &r.latency_ms;
    writeln!(
        out,
        "  latency (from due time): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )?;
    let s = &r.service_ms;
    writeln!(
        out,
        "  service time:            p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.p999),
        ms(s.max)
    )?;
    if let Some(ci) = steady_p99 {
        writeln!(
            out,
            "  steady-state p99: {} (95% CI {} .. {}, {} s)",
            ms(ci.mean),
            ms(ci.low),
            ms(ci.high),
            ci.n
        )?;
    }
    writeln!(out, "  longest gap between successes: {}", ms(r.max_gap_ms))?;
    if r.queued_max_ms >= QUEUED_NOTE_MS {
        writeln!(
            out,
            "  {}",
            st.warn(format!(
                "requests waited up to {} inside the feeder for a free connection",
                ms(r.queued_max_ms)
            ))
        )?;
    }
    let shares = shares(&r.instances, |i, n, pct| format!("{i} {n} ({pct:.1}%)"));
    writeln!(
        out,
        "  instances: {}",
        if shares.is_empty() {
            "none".to_string()
        } else {
            shares.join(", ")
        }
    )?;
    if let Some(h) = &r.handover {
        let window = match h.window_p99_ms {
            Some(p) => format!(", window p99 {}", ms(p)),
            None => String::new(),
        };
        writeln!(
            out,
            "  handover: {} → {}  first {} at {}, last {} at {}, overlap {}{window}",
            h.from,
            h.to,
            h.to,
            utc(h.first_new_ns),
            h.from,
            utc(h.last_old_ns),
            ms(h.overlap_ms)
        )?;
    }
    Ok(())
}

/// Each instance's count and percentage of all replies, formatted by `line`.
fn shares(
    by_instance: &BTreeMap<String, u64>,
    line: impl Fn(&str, u64, f64) -> String,
) -> Vec<String> {
    let total: u64 = by_instance.values().sum();
    by_instance
        .iter()
        .map(|(inst, n)| line(inst, *n, 100.0 * *n as f64 / total.max(1) as f64))
        .collect()
}

/// Unix ns as a UTC wall-clock time with milliseconds.
fn utc(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ns % 1_000_000_000).unwrap_or(0);
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) => t.format("%H:%M:%S%.3fZ").to_string(),
        None => format!("{ns} ns"),
    }
}

/// Milliseconds with sensible precision.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 1.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.3}ms")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use handover_contract::Handover;

    fn text(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
        let mut buf = Vec::new();
        f(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn summary_has_the_classic_line_and_no_colour_when_plain() {
        let r = FeederReport {
            sent: 10,
            ok: 7,
            rejected: 1,
            indeterminate: 2,
            target_rate: 10.0,
            achieved_rate: 10.0,
            duration_ms: 1000,
            max_gap_ms: 250.0,
            handover: Some(Handover {
                from: "a".into(),
                to: "b".into(),
                first_new_ns: 1_500_000_000,
                last_old_ns: 1_400_000_000,
                overlap_ms: 0.0,
                window_p99_ms: Some(3.0),
            }),
            ..FeederReport::default()
        };
        let out = text(|w| summary(w, &Style::new(false), &r, None));
        assert!(
            out.starts_with("result: failed = 3 succeeded = 7\n"),
            "{out}"
        );
        assert!(
            out.contains("longest gap between successes: 250ms"),
            "{out}"
        );
        assert!(
            out.contains("handover: a → b  first b at 00:00:01.500Z, last a at 00:00:01.400Z"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn colour_only_when_asked() {
        colored::control::set_override(true);
        assert!(Style::new(true).bad("x").contains('\u{1b}'));
        assert_eq!(Style::new(false).bad("x"), "x");
    }

    #[test]
    fn second_line_shows_instance_shares() {
        let mut s = Second {
            index: 3,
            sent: 100,
            ok: 100,
            ..Second::default()
        };
        s.by_instance.insert("a".into(), 25);
        s.by_instance.insert("b".into(), 75);
        let out = text(|w| second(w, &Style::new(false), &s));
        assert!(out.contains("a 25%  b 75%"), "{out}");
        assert!(out.trim_start().starts_with("3s"), "{out}");
    }

    #[test]
    fn events_are_one_line_each() {
        let st = Style::new(false);
        let out = text(|w| {
            event(
                w,
                &st,
                &Event::Change {
                    from: "a".into(),
                    to: "b".into(),
                    at_ns: 1_500_000_000,
                },
                0,
            )
        });
        assert_eq!(out, "instance change: a → b at 1.500s\n");
    }
}
