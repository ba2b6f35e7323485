//! The stacked chart of the live view: one column per slice of the last
//! ~30 s, replies per 100 ms stacked by instance with failures on top in
//! red, drawn with eighth blocks so small counts still show.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use ratatui::Frame;

use super::window::{Sample, SAMPLES};

/// Instance colours in order of first reply; failures are red.
pub const COLOURS: [Color; 7] = [
    Color::Blue,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Cyan,
    Color::LightBlue,
    Color::LightGreen,
];
pub const FAILED: Color = Color::Red;

pub fn colour(i: usize) -> Color {
    COLOURS[i % COLOURS.len()]
}

const EIGHTHS: [&str; 8] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇"];

/// The chart over `samples` (oldest first), newest at the right.
pub struct Stacked<'a> {
    pub samples: &'a [Sample],
    pub instances: usize,
}

impl Stacked<'_> {
    /// Samples per column: enough for ~30 s across `width` columns.
    fn per_column(width: u16) -> usize {
        SAMPLES.div_ceil(usize::from(width.max(1))).max(1)
    }

    /// Each column's stack (instances, then failures), mean per 100 ms.
    fn columns(&self, width: u16) -> Vec<Vec<f64>> {
        let k = Self::per_column(width);
        let mut cols: Vec<Vec<f64>> = self
            .samples
            .rchunks(k)
            .take(usize::from(width))
            .map(|chunk| {
                let mut v = vec![0.0; self.instances + 1];
                for s in chunk {
                    for (i, n) in s.ok.iter().enumerate().take(self.instances) {
                        v[i] += f64::from(*n);
                    }
                    v[self.instances] += f64::from(s.failed);
                }
                v.iter_mut().for_each(|x| *x /= chunk.len() as f64);
                v
            })
            .collect();
        cols.reverse();
        cols
    }

    /// The value at the top of the chart drawn `width` columns wide.
    pub fn top(&self, width: u16) -> f64 {
        Self::top_of(&self.columns(width))
    }

    fn top_of(cols: &[Vec<f64>]) -> f64 {
        cols.iter()
            .map(|c| c.iter().sum::<f64>())
            .fold(1.0, f64::max)
            * 1.1
    }
}

impl Widget for Stacked<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let cols = self.columns(area.width);
        let peak = Self::top_of(&cols);
        let eighths = f64::from(area.height) * 8.0;
        let x0 = area.right() - u16::try_from(cols.len()).unwrap_or(area.width);
        for (ci, col) in cols.iter().enumerate() {
            // Cumulative tops of each segment, in eighths of a cell.
            let mut tops = Vec::with_capacity(col.len());
            let mut sum = 0.0;
            for v in col {
                sum += v;
                tops.push((sum / peak * eighths).round() as u32);
            }
            let colour_of = |seg: usize| {
                if seg == self.instances {
                    FAILED
                } else {
                    colour(seg)
                }
            };
            let x = x0 + u16::try_from(ci).unwrap_or(0);
            for row in 0..area.height {
                let lo = u32::from(row) * 8;
                // The segment the cell's bottom edge is in.
                let Some(seg) = tops.iter().position(|&t| t > lo) else {
                    break;
                };
                let top = tops[seg];
                let y = area.bottom() - 1 - row;
                let Some(cell) = buf.cell_mut((x, y)) else {
                    continue;
                };
                if top >= lo + 8 {
                    cell.set_symbol("█").set_fg(colour_of(seg));
                } else {
                    // A boundary inside the cell: the lower segment in the
                    // foreground, what lies above it in the background.
                    cell.set_symbol(EIGHTHS[(top - lo) as usize])
                        .set_fg(colour_of(seg));
                    if let Some(next) = tops.iter().skip(seg + 1).position(|&t| t > top) {
                        cell.set_bg(colour_of(seg + 1 + next));
                    }
                }
            }
        }
    }
}

/// The chart in its box, with its scale and a legend of the last second's
/// replies per instance and failures.
pub fn panel(frame: &mut Frame, area: Rect, samples: &[Sample], instances: &[String]) {
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" replies per 100 ms by instance, last 30 s ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [plot, legend] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let stacked = Stacked {
        samples,
        instances: instances.len(),
    };
    let top = stacked.top(plot.width);
    frame.render_widget(stacked, plot);
    // The scale, over the oldest (left) end of the chart.
    let scale = format!("▲ {top:.0} per 100 ms");
    let width = u16::try_from(scale.chars().count())
        .unwrap_or(0)
        .min(plot.width);
    frame.render_widget(
        Paragraph::new(Span::styled(scale, Style::new().fg(Color::DarkGray))),
        Rect {
            width,
            height: plot.height.min(1),
            ..plot
        },
    );
    let last_second = || samples.iter().rev().take(10);
    let mut spans = Vec::new();
    for (i, name) in instances.iter().enumerate() {
        let n: u32 = last_second()
            .map(|x| x.ok.get(i).copied().unwrap_or(0))
            .sum();
        spans.push(Span::styled("■ ", Style::new().fg(colour(i))));
        spans.push(Span::raw(format!("{name} {n}/s  ")));
    }
    let failed: u32 = last_second().map(|x| x.failed).sum();
    spans.push(Span::styled("■ ", Style::new().fg(FAILED)));
    spans.push(Span::raw(format!("failed {failed}/s")));
    frame.render_widget(Paragraph::new(Line::from(spans)), legend);
}
