//! The timeline as inline SVG for the HTML report: the same [`Series`] the
//! SVG plot draws (replies per 100 ms stacked by instance, failures on top
//! in red, p99 below on a log scale), the steps as bands, the handover
//! moment and the injected faults as marks. Each instance is one
//! `<polygon class="series" data-instance=…>`, so a browser test (and a
//! reader's click on the legend) can find it.

use std::fmt::Write;

use plotters::style::RGBColor;

use super::escape::Esc;
use crate::faults::FaultEvent;
use crate::plot::{Series, Timeline, BUCKET_NS, FAILURE, PALETTE};
use crate::report::{StepOutcome, StepRecord};

/// At most this many bars across: a long run is drawn in wider bins.
const MAX_BARS: u64 = 1500;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
/// The replies panel and the latency panel: top edge and height.
const TOP: (f64, f64) = (28.0, 330.0);
const LOW: (f64, f64) = (410.0, 170.0);
const HEIGHT: f64 = 620.0;
/// Rows of step labels, and the width of one label character (10 px font).
const LABEL_ROWS: usize = 3;
const LABEL_CHAR_PX: f64 = 6.2;

/// The CSS colour of instance `i`.
pub fn instance_colour(i: usize) -> String {
    rgb(PALETTE[i % PALETTE.len()])
}

pub fn failure_colour() -> String {
    rgb(FAILURE)
}

fn rgb(c: RGBColor) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

/// Panel geometry: data → pixels.
struct Panel {
    top: f64,
    height: f64,
    x_max: f64,
}

impl Panel {
    fn x(&self, secs: f64) -> f64 {
        LEFT + secs / self.x_max * (WIDTH - LEFT - RIGHT)
    }
    /// `frac` in 0..=1 of the panel's height, from its bottom.
    fn y(&self, frac: f64) -> f64 {
        self.top + self.height * (1.0 - frac.clamp(0.0, 1.0))
    }
}

/// The whole chart, `<svg>…</svg>`.
pub fn svg(t: &Timeline, steps: &[StepRecord], faults: &[FaultEvent]) -> String {
    let span = match (t.buckets.keys().next(), t.buckets.keys().last()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 1,
    };
    let bin = span.div_ceil(MAX_BARS);
    let s = Series::binned(t, steps, bin);
    let y_max = s.peak * 1.25;
    let lat_max = s.p99.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let top = Panel {
        top: TOP.0,
        height: TOP.1,
        x_max: s.x_max,
    };
    let low = Panel {
        top: LOW.0,
        height: LOW.1,
        x_max: s.x_max,
    };
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="handover timeline">"#
    );
    let per = if bin == 1 {
        "replies per 100 ms, by instance (failures in red)".to_string()
    } else {
        format!(
            "replies per 100 ms, by instance (failures in red; mean of each {:.1} s)",
            (bin * BUCKET_NS) as f64 / 1e9
        )
    };
    caption(&mut o, TOP.0 - 10.0, &per);
    caption(&mut o, LOW.0 - 10.0, "latency p99 (ms, log scale)");
    for (panel, labels) in [(&top, true), (&low, false)] {
        bands(&mut o, panel, &s, steps, labels);
    }
    x_axis(&mut o, &top, s.x_max);
    x_axis(&mut o, &low, s.x_max);
    y_axis(
        &mut o,
        &top,
        y_max,
        |v| format!("{v:.0}"),
        linear_ticks(y_max),
    );
    let lat_lo = 0.01f64;
    let lat_frac = |v: f64| (v.max(lat_lo) / lat_lo).log10() / (lat_max / lat_lo).log10();
    let lat_ticks: Vec<f64> = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
        .into_iter()
        .filter(|&v| v <= lat_max)
        .collect();
    for v in &lat_ticks {
        let y = low.y(lat_frac(*v));
        let _ = write!(
            o,
            r##"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }

    // Areas: the tallest (failures, on top of everything) first, so each
    // lower stack paints over it and the bands show as a stacked chart.
    let n = t.instances.len();
    o.push_str(r#"<g class="areas">"#);
    for i in (0..=n).rev() {
        let (class, attr, colour, label) = if i == n {
            (
                "series failures",
                r#"data-series="failed""#.to_string(),
                failure_colour(),
                "failed (rejected + indeterminate)".to_string(),
            )
        } else {
            let name = &t.instances[i];
            (
                "series",
                format!(r#"data-series="instance" data-instance="{}""#, Esc(name)),
                instance_colour(i),
                format!("instance {name}"),
            )
        };
        let _ = write!(
            o,
            r#"<polygon class="{class}" {attr} fill="{colour}" points=""#
        );
        let stack = &s.stacks[i];
        if let (Some(first), Some(last)) = (stack.first(), stack.last()) {
            let _ = write!(o, "{:.1},{:.1} ", top.x(first.0), top.y(0.0));
            for (x, y) in stack {
                let _ = write!(o, "{:.1},{:.1} ", top.x(*x), top.y(y / y_max));
            }
            let _ = write!(o, "{:.1},{:.1}", top.x(last.0), top.y(0.0));
        }
        let _ = write!(o, r#""><title>{}</title></polygon>"#, Esc(&label));
    }
    o.push_str("</g>");
    o.push_str(r#"<polyline class="p99" fill="none" stroke="black" stroke-width="1.5" points=""#);
    for (x, v) in &s.p99 {
        let _ = write!(o, "{:.1},{:.1} ", low.x(*x), low.y(lat_frac(*v)));
    }
    o.push_str(r#""/>"#);

    if let Some(ns) = t.first_new_ns {
        let x = top.x(s.secs(ns));
        let _ = write!(
            o,
            r#"<g class="handover"><line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/><text x="{:.1}" y="{:.1}">◀ first reply from the new instance ({:.2} s)</text></g>"#,
            TOP.0,
            LOW.0 + LOW.1,
            x + 4.0,
            top.y(0.80),
            s.secs(ns)
        );
    }
    for (i, f) in faults.iter().filter(|f| f.fired_ns > 0).enumerate() {
        let x = top.x(s.secs(f.fired_ns));
        let _ = write!(
            o,
            r#"<g class="fault"><line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/><text x="{:.1}" y="{:.1}">⚡ {} ({})</text><title>{}</title></g>"#,
            TOP.0,
            LOW.0 + LOW.1,
            x + 3.0,
            top.y(0.70 - 0.06 * (i % 3) as f64),
            Esc(&f.fault),
            Esc(&f.at),
            Esc(&f.detail)
        );
    }
    o.push_str("</svg>");
    o
}

fn caption(o: &mut String, y: f64, text: &str) {
    let _ = write!(
        o,
        r#"<text class="caption" x="{LEFT}" y="{y:.1}">{}</text>"#,
        Esc(text)
    );
}

/// The steps as shaded bands (a failed one in red) with their names.
fn bands(o: &mut String, p: &Panel, s: &Series, steps: &[StepRecord], labels: bool) {
    o.push_str(r#"<g class="bands">"#);
    // Where each label row is taken up to (px), so labels never overprint.
    let mut rows = [f64::MIN; LABEL_ROWS];
    for (i, st) in steps.iter().enumerate().filter(|(_, st)| st.started_ns > 0) {
        let x0 = p.x(s.secs(st.started_ns));
        let x1 = p.x(s.secs(st.started_ns + st.duration_ms.max(1) * 1_000_000));
        let failed = matches!(st.outcome, StepOutcome::Failed | StepOutcome::TimedOut);
        let class = if failed {
            "band failed"
        } else if i % 2 == 0 {
            "band even"
        } else {
            "band odd"
        };
        let _ = write!(
            o,
            r#"<rect class="{class}" data-step="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{} {} ms: {}</title></rect>"#,
            Esc(&st.name),
            p.top,
            (x1 - x0).max(0.5),
            p.height,
            Esc(&st.name),
            st.duration_ms,
            Esc(st.detail.as_deref().unwrap_or(""))
        );
        if labels {
            // The first row free at this x; near the right edge the label
            // hangs to the left of its band.
            let width = LABEL_CHAR_PX * st.name.chars().count() as f64;
            let right_edge = x0 > LEFT + (WIDTH - LEFT - RIGHT) * 0.85;
            let (start, end, anchor) = if right_edge {
                (x0 - 2.0 - width, x0, "end")
            } else {
                (x0 + 2.0, x0 + 2.0 + width, "start")
            };
            let Some(row) = rows.iter().position(|&taken| taken + 4.0 < start) else {
                // No room: the band keeps its name in its tooltip.
                continue;
            };
            rows[row] = end;
            let y = p.top + 12.0 + 13.0 * row as f64;
            let x = if right_edge { x0 - 2.0 } else { x0 + 2.0 };
            let _ = write!(
                o,
                r#"<text class="band-label" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
                Esc(&st.name)
            );
        }
    }
    o.push_str("</g>");
}

fn x_axis(o: &mut String, p: &Panel, x_max: f64) {
    let bottom = p.top + p.height;
    let _ = write!(
        o,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{bottom:.1}" y2="{bottom:.1}"/><line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{:.1}" y2="{bottom:.1}"/>"#,
        WIDTH - RIGHT,
        p.top
    );
    for v in linear_ticks(x_max) {
        let x = p.x(v);
        let _ = write!(
            o,
            r#"<text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{v} s</text>"#,
            bottom + 14.0
        );
    }
}

fn y_axis(o: &mut String, p: &Panel, max: f64, label: impl Fn(f64) -> String, ticks: Vec<f64>) {
    for v in ticks {
        let y = p.y(v / max);
        let _ = write!(
            o,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(v)
        );
    }
}

/// Round tick values (1, 2 or 5 × 10ⁿ apart) from 0 up to `max`, about eight.
fn linear_ticks(max: f64) -> Vec<f64> {
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0];
    }
    let raw = max / 8.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= max)
        .take(20)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(linear_ticks(10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(linear_ticks(23.0).last().copied(), Some(20.0));
        assert_eq!(linear_ticks(0.0), [0.0]);
        assert!(linear_ticks(1e9).len() <= 20);
    }
}
