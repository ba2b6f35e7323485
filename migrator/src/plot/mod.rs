//! The SVG timeline of the handover moment: replies per 100 ms stacked by
//! instance (failures in red), p99 latency per 100 ms below, the steps as
//! labelled bands, and the instant the new instance first answered.
//! Injected faults are marked where they fired.
//!
//! - [`timeline`]: the ack log in 100 ms buckets, bounded in memory.
//! - [`series`]: those buckets as chart points (also drawn by the HTML report).

pub mod series;
pub mod timeline;

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::faults::FaultEvent;
use crate::reconcile::acklog::AckLogError;
use crate::report::{MigrationReport, StepOutcome, StepRecord};
pub use series::Series;
pub use timeline::{Bucket, Timeline, BUCKET_NS};
use timeline::{MAX_BUCKETS, MAX_INSTANCES};

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    AckLog(#[from] AckLogError),
    #[error("the ack log spans {seconds} s: more than the {} s a timeline draws", MAX_BUCKETS / 10)]
    TooLong { seconds: u64 },
    #[error("cannot draw {}: {reason}", path.display())]
    Draw {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// Draws the timeline of `acks` with `steps` as bands into the SVG file `out`.
/// The title carries the verdict when a `verdict` step is among `steps`.
pub fn render(acks: &Path, steps: &[StepRecord], out: &Path) -> Result<(), PlotError> {
    let verdict = steps
        .iter()
        .find(|s| s.name == "verdict")
        .map(|s| s.outcome == StepOutcome::Ok);
    let title = match verdict {
        Some(true) => "handover timeline: PASS".to_string(),
        Some(false) => "handover timeline: FAIL".to_string(),
        None => "handover timeline".to_string(),
    };
    render_titled(acks, steps, &title, out)
}

/// [`render`] with the verdict of a finished report in the title.
pub fn render_report(acks: &Path, report: &MigrationReport, out: &Path) -> Result<(), PlotError> {
    render_report_merged(&[acks.to_path_buf()], report, out)
}

/// [`render_report`] for several feeders' ack logs, merged in completion order.
pub fn render_report_merged(
    acks: &[std::path::PathBuf],
    report: &MigrationReport,
    out: &Path,
) -> Result<(), PlotError> {
    let title = if report.passed {
        "handover timeline: PASS".to_string()
    } else {
        let first = report.reasons.first().map(String::as_str).unwrap_or("");
        // A title is one line: the first reason, cut to fit.
        let cut: String = first.chars().take(90).collect();
        let more = if cut.len() < first.len() { "…" } else { "" };
        format!("handover timeline: FAIL ({cut}{more})")
    };
    let timeline = Timeline::from_files(acks)?;
    draw(&timeline, &report.steps, &report.faults, &title, out).map_err(|reason| PlotError::Draw {
        path: out.to_path_buf(),
        reason,
    })
}

/// [`render`] with a caller-chosen title.
pub fn render_titled(
    acks: &Path,
    steps: &[StepRecord],
    title: &str,
    out: &Path,
) -> Result<(), PlotError> {
    let timeline = Timeline::from_file(acks)?;
    draw(&timeline, steps, &[], title, out).map_err(|reason| PlotError::Draw {
        path: out.to_path_buf(),
        reason,
    })
}

pub(crate) const PALETTE: [RGBColor; MAX_INSTANCES] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];
pub(crate) const FAILURE: RGBColor = RGBColor(214, 39, 40);
const BAND: [RGBColor; 2] = [RGBColor(120, 120, 120), RGBColor(70, 110, 170)];
const HANDOVER: RGBColor = RGBColor(0, 0, 0);

fn draw(
    t: &Timeline,
    steps: &[StepRecord],
    faults: &[FaultEvent],
    title: &str,
    out: &Path,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let series = Series::new(t, steps);
    let secs = |ns: u64| series.secs(ns);
    let x_max = series.x_max;
    let n = t.instances.len();
    let Series {
        stacks, p99, peak, ..
    } = &series;
    let y_max = peak * 1.5;
    let lat_max = p99.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;

    let root = SVGBackend::new(out, (1400, 860)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 28).into_font().color(&BLACK))
        .map_err(|e| err(&e))?;
    let (upper, lower) = root.split_vertically(500);

    let mut top = ChartBuilder::on(&upper)
        .margin(12)
        .caption(
            "replies per 100 ms, by instance (failures in red)",
            ("sans-serif", 18),
        )
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(&e))?;
    top.configure_mesh()
        .x_desc("seconds since start")
        .y_desc("replies / 100 ms")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;
    draw_bands(&mut top, steps, &secs, y_max, true)?;
    for i in (0..=n).rev() {
        let (color, label) = if i == n {
            (FAILURE, "failed (rejected + indeterminate)".to_string())
        } else {
            (
                PALETTE[i % PALETTE.len()],
                format!("instance {}", t.instances[i]),
            )
        };
        top.draw_series(AreaSeries::new(
            stacks[i].iter().copied(),
            0.0,
            color.mix(0.85),
        ))
        .map_err(|e| err(&e))?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    draw_handover(&mut top, t, &secs, y_max)?;
    draw_faults(&mut top, faults, &secs, y_max, true)?;
    // Below the two rows of step labels, at the right.
    let (width, _) = top.plotting_area().dim_in_pixel();
    top.configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(
            i32::try_from(width).unwrap_or(0).saturating_sub(300),
            60,
        ))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(|e| err(&e))?;

    let mut bottom = ChartBuilder::on(&lower)
        .margin(12)
        .caption("latency p99 per 100 ms (ms, log scale)", ("sans-serif", 18))
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (0.01f64..lat_max).log_scale())
        .map_err(|e| err(&e))?;
    bottom
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("p99 ms")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;
    draw_bands(&mut bottom, steps, &secs, lat_max, false)?;
    bottom
        .draw_series(LineSeries::new(p99.iter().copied(), BLACK.stroke_width(2)))
        .map_err(|e| err(&e))?;
    draw_handover(&mut bottom, t, &secs, lat_max)?;
    draw_faults(&mut bottom, faults, &secs, lat_max, false)?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Chart<'a, 'b, Y> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;

fn draw_bands<Y>(
    chart: &mut Chart<'_, '_, Y>,
    steps: &[StepRecord],
    secs: &dyn Fn(u64) -> f64,
    y_top: f64,
    labels: bool,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    for (i, s) in steps.iter().enumerate().filter(|(_, s)| s.started_ns > 0) {
        let x0 = secs(s.started_ns);
        let x1 = secs(s.started_ns + s.duration_ms.max(1) * 1_000_000);
        let color = if matches!(s.outcome, StepOutcome::Failed | StepOutcome::TimedOut) {
            FAILURE
        } else {
            BAND[i % 2]
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, y_bottom(y_top)), (x1, y_top)],
                color.mix(0.12).filled(),
            )))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, y_bottom(y_top)), (x0, y_top)],
                color.mix(0.6),
            )))
            .map_err(|e| err(&e))?;
        if labels {
            // Alternate two rows so short neighbouring steps do not overprint.
            let row = if i % 2 == 0 { 0.97 } else { 0.91 };
            let label = format!("{} {}", s.name, short_ms(s.duration_ms));
            // Near the right edge, hang the label to the left of its band.
            let range = chart.x_range();
            let (x_lo, x_hi) = (range.start, range.end);
            let h = if x0 > x_lo + (x_hi - x_lo) * 0.85 {
                HPos::Right
            } else {
                HPos::Left
            };
            let font = ("sans-serif", 13)
                .into_font()
                .color(&color.mix(0.9))
                .pos(Pos::new(h, VPos::Top));
            chart
                .draw_series(std::iter::once(Text::new(label, (x0, y_top * row), font)))
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

/// The lowest y of a panel: 0 on the linear one, its floor on the log one.
fn y_bottom(y_top: f64) -> f64 {
    if y_top > 0.0 {
        0.01f64.min(y_top)
    } else {
        0.0
    }
}

fn draw_handover<Y>(
    chart: &mut Chart<'_, '_, Y>,
    t: &Timeline,
    secs: &dyn Fn(u64) -> f64,
    y_top: f64,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    let Some(ns) = t.first_new_ns else {
        return Ok(());
    };
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let x = secs(ns);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x, y_bottom(y_top)), (x, y_top)],
            HANDOVER.stroke_width(2),
        )))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(std::iter::once(Text::new(
            format!("◀ first reply from the new instance ({x:.2} s)"),
            (x, y_top * 0.82),
            ("sans-serif", 13).into_font().color(&HANDOVER),
        )))
        .map_err(|e| err(&e))?;
    Ok(())
}

/// A mark where each fault fired: a thin line in the failure colour, and
/// (on the top panel) the fault's name.
fn draw_faults<Y>(
    chart: &mut Chart<'_, '_, Y>,
    faults: &[FaultEvent],
    secs: &dyn Fn(u64) -> f64,
    y_top: f64,
    labels: bool,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    for (i, f) in faults.iter().filter(|f| f.fired_ns > 0).enumerate() {
        let x = secs(f.fired_ns);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, y_bottom(y_top)), (x, y_top)],
                FAILURE.stroke_width(1),
            )))
            .map_err(|e| err(&e))?;
        if labels {
            let row = 0.74 - 0.06 * (i % 3) as f64;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("⚡ {} ({})", f.fault, f.at),
                    (x, y_top * row),
                    ("sans-serif", 12).into_font().color(&FAILURE),
                )))
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

fn short_ms(ms: u64) -> String {
    if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}
