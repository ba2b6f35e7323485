//! The SVG timeline of the handover moment: replies per 100 ms stacked by
//! instance (failures in red), p99 latency per 100 ms below, the steps as
//! labelled bands, and the instant the new instance first answered.
//!
//! The ack log is streamed into fixed 100 ms [`Bucket`]s (counts per instance
//! and outcome, plus a small fixed log-scale latency histogram), so memory
//! grows with the run's length, never with its rate.

use std::collections::BTreeMap;
use std::path::Path;

use handover_contract::{AckRecord, Outcome};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::reconcile::acklog::{self, AckLogError};
use crate::report::{MigrationReport, StepOutcome, StepRecord};

/// Width of one bucket.
pub const BUCKET_NS: u64 = 100_000_000;
/// A timeline longer than this (in buckets: 12 hours) is refused, not drawn.
const MAX_BUCKETS: u64 = 12 * 3600 * 10;
/// Instances beyond this many share the last colour as "other".
const MAX_INSTANCES: usize = 8;
/// Latency histogram: 4 sub-buckets per power of two from 1 µs, up to ~2^31 µs.
const LAT_SLOTS: usize = 4 * 32;

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

/// One 100 ms slice of the run.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Successful replies per instance index (see [`Timeline::instances`]).
    pub ok: Vec<u32>,
    pub rejected: u32,
    pub indeterminate: u32,
    latency: Box<[u32; LAT_SLOTS]>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            ok: Vec::new(),
            rejected: 0,
            indeterminate: 0,
            latency: Box::new([0; LAT_SLOTS]),
        }
    }

    /// The latency under which 99 % of this bucket's replies fell, in ms
    /// (upper edge of its histogram slot: at most ~19 % high).
    pub fn p99_ms(&self) -> Option<f64> {
        let total: u64 = self.latency.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = (total * 99).div_ceil(100);
        let mut seen = 0u64;
        for (slot, &c) in self.latency.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(slot_upper_us(slot) / 1000.0);
            }
        }
        None
    }
}

fn latency_slot(us: u64) -> usize {
    let us = us.max(1);
    let pow = 63 - us.leading_zeros() as usize;
    let frac = if pow >= 2 {
        ((us >> (pow - 2)) & 3) as usize
    } else {
        ((us << (2 - pow)) & 3) as usize
    };
    (pow * 4 + frac).min(LAT_SLOTS - 1)
}

fn slot_upper_us(slot: usize) -> f64 {
    let pow = (slot / 4) as i32;
    let frac = (slot % 4) as f64;
    2f64.powi(pow) * (1.0 + (frac + 1.0) / 4.0)
}

/// The whole run, bucketed.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Instance names in order of first reply; the last may be "other".
    pub instances: Vec<String>,
    /// Keyed by `done_ns / BUCKET_NS`.
    pub buckets: BTreeMap<u64, Bucket>,
    /// First reply of the instance that answered last, when it differs from
    /// the one that answered first: the handover moment.
    pub first_new_ns: Option<u64>,
    first_ns_by_instance: Vec<u64>,
    last_instance: Option<usize>,
}

impl Timeline {
    /// Adds one ack.
    pub fn add(&mut self, ack: &AckRecord) -> Result<(), PlotError> {
        let key = ack.done_ns / BUCKET_NS;
        if let (Some((&lo, _)), Some((&hi, _))) = (
            self.buckets.first_key_value(),
            self.buckets.last_key_value(),
        ) {
            let span = hi.max(key) - lo.min(key);
            if span > MAX_BUCKETS {
                return Err(PlotError::TooLong { seconds: span / 10 });
            }
        }
        let instance = match (&ack.instance, ack.outcome) {
            (Some(name), Outcome::Ok) => {
                let i = self.instance_index(name, ack.done_ns);
                self.last_instance = Some(i);
                Some(i)
            }
            (None, Outcome::Ok) => Some(self.instance_index("unnamed", ack.done_ns)),
            _ => None,
        };
        let b = self.buckets.entry(key).or_insert_with(Bucket::new);
        match (ack.outcome, instance) {
            (Outcome::Rejected, _) => b.rejected += 1,
            (Outcome::Indeterminate, _) | (Outcome::Ok, None) => b.indeterminate += 1,
            (Outcome::Ok, Some(i)) => {
                if b.ok.len() <= i {
                    b.ok.resize(i + 1, 0);
                }
                b.ok[i] += 1;
            }
        }
        b.latency[latency_slot(ack.latency_us)] += 1;
        Ok(())
    }

    fn instance_index(&mut self, name: &str, done_ns: u64) -> usize {
        let i = match self.instances.iter().position(|n| n == name) {
            Some(i) => i,
            None if self.instances.len() < MAX_INSTANCES - 1 => {
                self.instances.push(name.to_string());
                self.first_ns_by_instance.push(done_ns);
                self.instances.len() - 1
            }
            None => match self.instances.iter().position(|n| n == "other") {
                Some(i) => i,
                None => {
                    self.instances.push("other".into());
                    self.first_ns_by_instance.push(done_ns);
                    self.instances.len() - 1
                }
            },
        };
        if let Some(first) = self.first_ns_by_instance.get_mut(i) {
            *first = (*first).min(done_ns);
        }
        i
    }

    fn finish(&mut self) {
        self.first_new_ns = match self.last_instance {
            Some(i) if i > 0 => self.first_ns_by_instance.get(i).copied(),
            _ => None,
        };
    }

    /// Streams an ack log into a timeline.
    pub fn from_file(acks: &Path) -> Result<Self, PlotError> {
        let mut t = Timeline::default();
        let mut failure: Option<PlotError> = None;
        let read = acklog::for_each(acks, |ack| {
            t.add(ack).map_err(|e| {
                let text = e.to_string();
                failure = Some(e);
                text
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        read?;
        t.finish();
        Ok(t)
    }
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
    let title = if report.passed {
        "handover timeline: PASS".to_string()
    } else {
        let first = report.reasons.first().map(String::as_str).unwrap_or("");
        format!("handover timeline: FAIL ({first})")
    };
    render_titled(acks, &report.steps, &title, out)
}

/// [`render`] with a caller-chosen title.
pub fn render_titled(
    acks: &Path,
    steps: &[StepRecord],
    title: &str,
    out: &Path,
) -> Result<(), PlotError> {
    let timeline = Timeline::from_file(acks)?;
    draw(&timeline, steps, title, out).map_err(|reason| PlotError::Draw {
        path: out.to_path_buf(),
        reason,
    })
}

const PALETTE: [RGBColor; MAX_INSTANCES] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];
const FAILURE: RGBColor = RGBColor(214, 39, 40);
const BAND: [RGBColor; 2] = [RGBColor(120, 120, 120), RGBColor(70, 110, 170)];
const HANDOVER: RGBColor = RGBColor(0, 0, 0);

fn draw(t: &Timeline, steps: &[StepRecord], title: &str, out: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    // The axis starts at the earliest thing drawn: a reply or a step.
    let first_reply = t.buckets.keys().next().map(|k| k * BUCKET_NS);
    let first_step = steps.iter().map(|s| s.started_ns).filter(|&n| n > 0).min();
    let t0 = match (first_reply, first_step) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0),
    };
    let secs = |ns: u64| ns.saturating_sub(t0) as f64 / 1e9;
    let last_reply = t.buckets.keys().last().map(|k| (k + 1) * BUCKET_NS);
    let last_step = steps
        .iter()
        .map(|s| s.started_ns + s.duration_ms * 1_000_000)
        .max();
    let x_max = secs(last_reply.unwrap_or(0).max(last_step.unwrap_or(0))).max(1.0) * 1.02;

    // Cumulative stacks: instances in order, then failures on top.
    let n = t.instances.len();
    let mut peak = 1u32;
    let mut stacks: Vec<Vec<(f64, f64)>> = vec![Vec::with_capacity(t.buckets.len() * 2); n + 1];
    let mut p99: Vec<(f64, f64)> = Vec::with_capacity(t.buckets.len());
    let mut prev_key: Option<u64> = None;
    for (&key, b) in &t.buckets {
        // Close gaps with zeros so an outage shows as a drop, not a ramp.
        if let Some(p) = prev_key {
            if key > p + 1 {
                for stack in stacks.iter_mut() {
                    stack.push((secs((p + 1) * BUCKET_NS), 0.0));
                    stack.push((secs(key * BUCKET_NS), 0.0));
                }
            }
        }
        prev_key = Some(key);
        // Two points per bucket: a flat top over its 100 ms, like a bar.
        let (x, x_end) = (secs(key * BUCKET_NS), secs((key + 1) * BUCKET_NS));
        let mut sum = 0u32;
        for (i, stack) in stacks.iter_mut().enumerate().take(n) {
            sum += b.ok.get(i).copied().unwrap_or(0);
            stack.push((x, f64::from(sum)));
            stack.push((x_end, f64::from(sum)));
        }
        sum += b.rejected + b.indeterminate;
        stacks[n].push((x, f64::from(sum)));
        stacks[n].push((x_end, f64::from(sum)));
        peak = peak.max(sum);
        if let Some(p) = b.p99_ms() {
            p99.push((x, p));
        }
    }
    let y_max = f64::from(peak) * 1.5;
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
        .draw_series(LineSeries::new(p99, BLACK.stroke_width(2)))
        .map_err(|e| err(&e))?;
    draw_handover(&mut bottom, t, &secs, lat_max)?;
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
        let color = if s.outcome == StepOutcome::Failed {
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

fn short_ms(ms: u64) -> String {
    if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ack(done_ns: u64, instance: &str, outcome: Outcome, latency_us: u64) -> AckRecord {
        AckRecord {
            id: format!("o{done_ns}"),
            due_ns: done_ns,
            done_ns,
            outcome,
            status: None,
            instance: Some(instance.into()),
            latency_us,
            user_id: None,
            items_digest: None,
        }
    }

    #[test]
    fn latency_slots_are_monotonic_and_bound_the_value() {
        let mut prev = 0;
        for us in [1, 2, 3, 5, 8, 100, 999, 1000, 4096, 1_000_000, u64::MAX] {
            let slot = latency_slot(us);
            assert!(slot >= prev, "{us}");
            prev = slot;
            if us < 1 << 30 {
                assert!(slot_upper_us(slot) >= us as f64, "{us} in slot {slot}");
                assert!(
                    slot_upper_us(slot) <= us as f64 * 1.5 + 1.0,
                    "{us} in slot {slot}"
                );
            }
        }
    }

    #[test]
    fn buckets_count_by_instance_and_outcome_and_find_the_handover() {
        let mut t = Timeline::default();
        let base = 1_700_000_000_000_000_000u64;
        for i in 0..10 {
            t.add(&ack(base + i * 10_000_000, "a", Outcome::Ok, 1000))
                .unwrap();
        }
        t.add(&ack(base + 150_000_000, "a", Outcome::Indeterminate, 5000))
            .unwrap();
        t.add(&ack(base + 160_000_000, "b", Outcome::Ok, 2000))
            .unwrap();
        t.add(&ack(base + 170_000_000, "a", Outcome::Ok, 2000))
            .unwrap();
        t.add(&ack(base + 250_000_000, "b", Outcome::Ok, 2000))
            .unwrap();
        t.finish();
        assert_eq!(t.instances, ["a", "b"]);
        assert_eq!(t.buckets.len(), 3);
        let first = t.buckets.values().next().unwrap();
        assert_eq!(first.ok, [10]);
        assert!((1.0..=1.25).contains(&first.p99_ms().unwrap()));
        let second = t.buckets.values().nth(1).unwrap();
        assert_eq!(second.ok, [1, 1]);
        assert_eq!(second.indeterminate, 1);
        assert_eq!(t.first_new_ns, Some(base + 160_000_000));
    }

    #[test]
    fn an_absurd_time_span_is_refused() {
        let mut t = Timeline::default();
        t.add(&ack(1_000_000_000, "a", Outcome::Ok, 1)).unwrap();
        let err = t
            .add(&ack(
                1_000_000_000 + 13 * 3600 * 1_000_000_000,
                "a",
                Outcome::Ok,
                1,
            ))
            .unwrap_err();
        assert!(matches!(err, PlotError::TooLong { .. }), "{err}");
    }
}
