//! The feeder's own view: where it sends and at what rate, the chart of
//! replies by instance, the load's figures, the keys.

use std::time::Duration;

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::window::{Sample, Window};
use super::{chart, LoadView, Scene};
use crate::clock::Clock;
use crate::live::Watch;

/// One frame's state, as plain data.
#[derive(Debug, Clone, Default)]
pub struct FeederFrame {
    pub target: String,
    pub rate: f64,
    pub elapsed: Duration,
    pub load: LoadView,
    pub instances: Vec<String>,
    /// Oldest first, one per 100 ms.
    pub samples: Vec<Sample>,
    pub stopping: bool,
}

/// Samples a running feeder for its view.
pub struct FeederScene {
    watch: Watch,
    window: Window,
    clock: Clock,
    frame: FeederFrame,
}

impl FeederScene {
    pub fn new(watch: Watch, target: String, rate: f64) -> FeederScene {
        FeederScene {
            watch,
            window: Window::default(),
            clock: Clock::start(),
            frame: FeederFrame {
                target,
                rate,
                ..FeederFrame::default()
            },
        }
    }
}

impl Scene for FeederScene {
    fn sample(&mut self) {
        let live = self.watch.live();
        self.window.sample(&live);
        let f = &mut self.frame;
        f.elapsed = self.clock.elapsed();
        f.load = LoadView::of(&live, &self.window, self.clock.now_ns());
        f.instances.clone_from(&self.window.instances);
        f.samples.clear();
        f.samples.extend(self.window.samples.iter().cloned());
    }

    fn draw(&self, frame: &mut Frame) {
        draw(frame, &self.frame);
    }

    fn stopping(&mut self) {
        self.frame.stopping = true;
    }
}

/// Draws one frame of `s` (pure: tests render it on `TestBackend`).
pub fn draw(frame: &mut Frame, s: &FeederFrame) {
    let [title, chart_area, figures, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(2),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let bold = Style::new().add_modifier(Modifier::BOLD);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" feeder ", bold),
            Span::styled(s.target.clone(), bold.fg(Color::Cyan)),
            Span::raw(format!("  {}/s  {:.1} s", s.rate, s.elapsed.as_secs_f64())),
        ])),
        title,
    );
    chart::panel(frame, chart_area, &s.samples, &s.instances);
    frame.render_widget(s.load.lines(), figures);
    let help = if s.stopping {
        Span::styled(
            " stopping: in-flight requests finish, then the summary (q again to force)",
            Style::new().fg(Color::Yellow),
        )
    } else {
        Span::styled(
            " q or Ctrl-C: stop (in-flight requests finish, then the summary)",
            Style::new().fg(Color::DarkGray),
        )
    };
    frame.render_widget(Paragraph::new(Line::from(help)), footer);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    #[test]
    fn the_target_the_instances_and_the_figures_show_at_80_by_24() {
        let s = FeederFrame {
            target: "http://127.0.0.1:8080/".into(),
            rate: 1000.0,
            elapsed: Duration::from_millis(4200),
            load: LoadView {
                sent: 4200,
                ok: 4190,
                failed: 10,
                p99_ms: 3.5,
                ..LoadView::default()
            },
            instances: vec!["a".into(), "b".into()],
            samples: vec![
                Sample {
                    ok: vec![60, 40],
                    failed: 1
                };
                42
            ],
            stopping: false,
        };
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| draw(f, &s)).unwrap();
        let b = t.backend().buffer();
        let text: String = b.content().iter().map(|c| c.symbol()).collect();
        for want in [
            "feeder http://127.0.0.1:8080/",
            "■ a 600/s",
            "■ b 400/s",
            "failed 10/s",
            "sent 4200",
            "p99 3.5 ms",
            "q or Ctrl-C",
        ] {
            assert!(text.contains(want), "{want} missing");
        }
        assert!(b
            .content()
            .iter()
            .any(|c| c.fg == chart::FAILED && c.symbol() != " "));
    }
}
