//! The load's figures as the views show them: sent/ok/failed/missed, p50
//! and p99 from the due time, the current and the longest gap, the overlap
//! while both instances answer.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::window::Window;
use crate::Live;

/// Samples that count as "now" for "both answering": the last second.
const RECENT: usize = 10;

/// The load's figures at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadView {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub missed: u64,
    pub in_flight: u64,
    /// Over the last whole second, from the due time.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Since the latest success, and the longest so far.
    pub gap_now_ms: f64,
    pub gap_max_ms: f64,
    /// How long both instances have answered (first new → last old).
    pub overlap_ms: Option<f64>,
    /// More than one instance answered in the last second.
    pub both_answering: bool,
}

impl LoadView {
    /// The figures of `live` at `now_ns` (Unix ns), `window` for who
    /// answered in the last second.
    pub fn of(live: &Live, window: &Window, now_ns: u64) -> LoadView {
        let recent = window.samples.iter().rev().take(RECENT);
        let answering = recent.fold(vec![false; window.instances.len()], |mut seen, s| {
            for (i, n) in s.ok.iter().enumerate() {
                seen[i] |= *n > 0;
            }
            seen
        });
        LoadView {
            sent: live.sent,
            ok: live.ok,
            failed: live.rejected + live.indeterminate,
            missed: live.missed,
            in_flight: live.in_flight,
            p50_ms: live.p50_us as f64 / 1000.0,
            p99_ms: live.p99_us as f64 / 1000.0,
            gap_now_ms: live
                .last_ok_ns
                .map(|t| now_ns.saturating_sub(t) as f64 / 1e6)
                .unwrap_or(0.0),
            gap_max_ms: live.max_gap_ns as f64 / 1e6,
            overlap_ms: match (live.first_new_ns, live.last_old_ns) {
                (Some(first), Some(last)) => Some(last.saturating_sub(first) as f64 / 1e6),
                _ => None,
            },
            both_answering: answering.iter().filter(|a| **a).count() >= 2,
        }
    }

    /// Two lines of figures (failures in red when there are any).
    pub fn lines(&self) -> Paragraph<'static> {
        let failed_style = if self.failed > 0 {
            Style::new().add_modifier(Modifier::BOLD).fg(Color::Red)
        } else {
            Style::new()
        };
        let first = Line::from(vec![
            Span::raw(format!(" sent {}  ok {}  ", self.sent, self.ok)),
            Span::styled(format!("failed {}", self.failed), failed_style),
            Span::raw(format!(
                "  missed {}  in flight {}   p50 {:.1} ms  p99 {:.1} ms",
                self.missed, self.in_flight, self.p50_ms, self.p99_ms
            )),
        ]);
        let overlap = match (self.overlap_ms, self.both_answering) {
            (Some(ms), true) => format!("overlap {:.1} s, both answering", ms / 1000.0),
            (Some(ms), false) => format!("overlap {:.1} s", ms / 1000.0),
            (None, true) => "both answering".to_string(),
            (None, false) => "overlap -".to_string(),
        };
        let second = Line::from(format!(
            " gap now {:.0} ms  longest {:.0} ms   {overlap}",
            self.gap_now_ms, self.gap_max_ms
        ));
        Paragraph::new(vec![first, second])
    }
}
