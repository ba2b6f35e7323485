//! The live view's layout: a pure function of a [`Snapshot`], so tests
//! render it into ratatui's `TestBackend` and read the buffer.
//!
//! ```text
//!  handover · migrator demo   12.3 s              record shop.test → 127.0.0.3
//! ┌ steps ──────────────┐┌ replies per 100 ms by instance, last 30 s ───────┐
//! │✓ preflight     5 ms ││                               ▆▆▆▆▆▇▇▇▇          │
//! │▶ drain_a      3.2 s ││                   ▄▄▄▄▄▄▄▄▄▄▄▄█████████          │
//! │· stop_a             ││■ a 2766  ■ b 1824  ■ failed 0                    │
//! └─────────────────────┘└──────────────────────────────────────────────────┘
//!  sent 4590  ok 4590  failed 0  missed 0 │ p50 2.4 ms p99 34.9 ms │ gap …
//! ```

use std::time::Duration;

use feeder::view::chart;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::snapshot::{Snapshot, StepView};
use crate::report::StepOutcome;

/// Width of the steps panel.
const STEPS_WIDTH: u16 = 26;

/// Draws one frame of `s`.
pub fn draw(frame: &mut Frame, s: &Snapshot) {
    let [title, main, figures, progress, notes, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(title_line(s), title);
    let [steps, chart] =
        Layout::horizontal([Constraint::Length(STEPS_WIDTH), Constraint::Min(10)]).areas(main);
    frame.render_widget(steps_panel(s), steps);
    chart::panel(frame, chart, &s.samples, &s.instances);
    match &s.load {
        Some(l) => frame.render_widget(l.lines(), figures),
        None => frame.render_widget(
            Paragraph::new(" load: not running in this process"),
            figures,
        ),
    }
    let line = s.progress.as_deref().unwrap_or("");
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(" "), dim(line)])),
        progress,
    );
    let lines: Vec<Line> = s
        .notes
        .iter()
        .map(|n| Line::from(format!(" {n}")))
        .collect();
    frame.render_widget(Paragraph::new(lines), notes);
    frame.render_widget(footer_line(s), footer);
}

fn dim(s: &str) -> Span<'_> {
    Span::styled(s, Style::new().fg(Color::DarkGray))
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn title_line(s: &Snapshot) -> Paragraph<'_> {
    let mut spans = vec![
        Span::styled(format!(" {} ", s.title), bold()),
        dim(""),
        Span::raw(format!(" {:.1} s", s.elapsed.as_secs_f64())),
    ];
    if !s.target.is_empty() {
        spans.push(Span::raw("   record "));
        spans.push(Span::styled(s.target.clone(), bold().fg(Color::Cyan)));
    }
    Paragraph::new(Line::from(spans))
}

fn took(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn steps_panel(s: &Snapshot) -> Paragraph<'_> {
    let name_width = usize::from(STEPS_WIDTH).saturating_sub(13);
    let lines: Vec<Line> = s
        .steps
        .iter()
        .map(|(name, view)| {
            let (mark, style, time) = match view {
                StepView::Pending => ("·", Style::new().fg(Color::DarkGray), String::new()),
                StepView::Running(d) => ("▶", bold().fg(Color::Black).bg(Color::Yellow), took(*d)),
                StepView::Done(StepOutcome::Ok, d) => {
                    ("✓", Style::new().fg(Color::Green), took(*d))
                }
                StepView::Done(StepOutcome::Failed, d) => ("✗", bold().fg(Color::Red), took(*d)),
                StepView::Done(StepOutcome::TimedOut, d) => {
                    ("⏱", Style::new().fg(Color::Yellow), took(*d))
                }
                StepView::Done(StepOutcome::Skipped, d) => {
                    ("-", Style::new().fg(Color::DarkGray), took(*d))
                }
            };
            Line::styled(format!("{mark} {name:<name_width$}{time:>8}"), style)
        })
        .collect();
    Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" steps "))
}

fn footer_line(s: &Snapshot) -> Paragraph<'_> {
    let line = match (&s.verdict, s.stopping) {
        (Some((true, d)), _) => Line::from(vec![
            Span::styled(" PASS ", bold().fg(Color::Black).bg(Color::Green)),
            Span::raw(format!(" {d}")),
        ]),
        (Some((false, d)), _) => Line::from(vec![
            Span::styled(" FAIL ", bold().fg(Color::White).bg(Color::Red)),
            Span::raw(format!(" {d}")),
        ]),
        (None, true) => Line::from(Span::styled(
            " stopping safely: finishing the current step, the report will be written (q again to force)",
            Style::new().fg(Color::Yellow),
        )),
        (None, false) => Line::from(dim(" q or Ctrl-C: stop safely (rollback rules apply, the report is written)")),
    };
    Paragraph::new(line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use feeder::view::chart::FAILED;
    use feeder::view::window::Sample;
    use feeder::view::LoadView;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::Terminal;

    fn render(s: &Snapshot, w: u16, h: u16) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        t.backend().buffer().clone()
    }

    fn text(b: &Buffer) -> String {
        let a = b.area;
        (a.top()..a.bottom())
            .map(|y| {
                (a.left()..a.right())
                    .map(|x| b[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The demo mid-drain: A and B both answering, a short failure burst.
    fn during_drain() -> Snapshot {
        let ms = Duration::from_millis;
        let mut samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                ok: if i < 120 { vec![100] } else { vec![40, 60] },
                failed: 0,
            })
            .collect();
        for s in &mut samples[150..160] {
            s.failed = 80;
        }
        Snapshot {
            title: "handover · migrator demo".into(),
            elapsed: ms(12_300),
            steps: vec![
                ("preflight".into(), StepView::Done(StepOutcome::Ok, ms(5))),
                ("start_b".into(), StepView::Done(StepOutcome::Ok, ms(106))),
                ("converge".into(), StepView::Done(StepOutcome::Ok, ms(1033))),
                ("flip".into(), StepView::Done(StepOutcome::Ok, ms(17))),
                ("drain_a".into(), StepView::Running(ms(3200))),
                ("stop_a".into(), StepView::Pending),
                ("reconcile".into(), StepView::Pending),
                ("verdict".into(), StepView::Pending),
            ],
            progress: Some("drain_a: A served 12 in the last 100 ms".into()),
            target: "shop.handover.test → 127.0.0.3 (B)".into(),
            load: Some(LoadView {
                sent: 12_000,
                ok: 11_200,
                failed: 800,
                missed: 0,
                in_flight: 3,
                p50_ms: 2.4,
                p99_ms: 34.9,
                gap_now_ms: 4.0,
                gap_max_ms: 53.0,
                overlap_ms: Some(6900.0),
                both_answering: true,
            }),
            instances: vec!["a".into(), "b".into()],
            samples,
            notes: vec!["load started: 1000/s".into()],
            verdict: None,
            stopping: false,
        }
    }

    #[test]
    fn the_steps_show_with_the_current_one_highlighted() {
        let b = render(&during_drain(), 120, 32);
        let t = text(&b);
        for step in crate::live::board::planned() {
            assert!(t.contains(step), "{step} missing:\n{t}");
        }
        assert!(t.contains("✓ preflight"), "{t}");
        assert!(t.contains("▶ drain_a"), "{t}");
        // The running step's row is highlighted.
        let (x, y) = find(&b, "▶ drain_a");
        assert_eq!(b[(x, y)].bg, Color::Yellow);
        assert!(
            t.contains("record shop.handover.test → 127.0.0.3 (B)"),
            "{t}"
        );
        assert!(t.contains("drain_a: A served 12"), "{t}");
    }

    #[test]
    fn the_overlap_and_both_instances_show() {
        let t = text(&render(&during_drain(), 120, 32));
        assert!(t.contains("overlap 6.9 s, both answering"), "{t}");
        assert!(t.contains("■ a 400/s"), "{t}");
        assert!(t.contains("■ b 600/s"), "{t}");
        assert!(t.contains("p99 34.9 ms"), "{t}");
        assert!(t.contains("longest 53 ms"), "{t}");
    }

    #[test]
    fn a_failure_burst_is_red_in_the_chart_and_in_the_figures() {
        let b = render(&during_drain(), 120, 32);
        let chart_reds = b
            .content()
            .iter()
            .filter(|c| {
                c.fg == FAILED && (c.symbol() == "█" || EIGHTH_BLOCKS.contains(&c.symbol()))
            })
            .count();
        assert!(chart_reds > 0, "no red bars:\n{}", text(&b));
        let (x, y) = find(&b, "failed 800");
        assert_eq!(b[(x, y)].fg, Color::Red);
        // Without failures: no red bar at all.
        let mut clean = during_drain();
        clean.samples.iter_mut().for_each(|s| s.failed = 0);
        let b = render(&clean, 120, 32);
        assert!(!b
            .content()
            .iter()
            .any(|c| c.fg == FAILED && c.symbol() == "█"));
    }

    #[test]
    fn a_narrow_80_by_24_terminal_still_shows_steps_instances_and_figures() {
        let t = text(&render(&during_drain(), 80, 24));
        for s in [
            "preflight",
            "drain_a",
            "verdict",
            "■ a",
            "■ b",
            "sent 12000",
            "overlap",
        ] {
            assert!(t.contains(s), "{s} missing at 80x24:\n{t}");
        }
    }

    #[test]
    fn the_verdict_replaces_the_key_help_at_the_end() {
        let mut s = during_drain();
        assert!(text(&render(&s, 100, 30)).contains("q or Ctrl-C: stop safely"));
        s.stopping = true;
        assert!(text(&render(&s, 100, 30)).contains("stopping safely"));
        s.verdict = Some((true, "passed".into()));
        let t = text(&render(&s, 100, 30));
        assert!(t.contains(" PASS  passed"), "{t}");
        s.verdict = Some((false, "failed: 3 orders lost".into()));
        assert!(text(&render(&s, 100, 30)).contains(" FAIL  failed: 3 orders lost"));
    }

    const EIGHTH_BLOCKS: [&str; 7] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇"];

    /// The position of the first cell of `needle` on one row.
    fn find(b: &Buffer, needle: &str) -> (u16, u16) {
        let a = b.area;
        for y in a.top()..a.bottom() {
            let row: Vec<&str> = (a.left()..a.right()).map(|x| b[(x, y)].symbol()).collect();
            let line = row.concat();
            if let Some(byte) = line.find(needle) {
                // Cells before the match (every symbol here is one cell).
                let x = line[..byte].chars().count();
                return (a.left() + u16::try_from(x).unwrap(), y);
            }
        }
        panic!("{needle} not on screen:\n{}", text(b));
    }
}
