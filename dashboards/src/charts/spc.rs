//! An SPC chart as SVG in the Making Data Count style: the data line and its points coloured
//! by point type, the mean solid, the process limits dashed grey, the target dashed red, each
//! line broken where the process is rebased.
//!
//! Annotations are drawn as numbered markers on a vertical line at their period (dotted for a
//! note, solid where the process was rebased; the line behind the data, the marker in front);
//! pages list the numbered notes under the chart.
//!
//! A KPI's reference range is a pale band behind everything.
//!
//! The chart is a pure function of [`SpcChartView`] (a series with its centre line and limits
//! per point, as both XmR and attribute charts give them), so a page, an export and a golden
//! test draw the same bytes. Each point carries a `<title>` (its period, value and meaning) for
//! a tooltip without JavaScript; the chart as a whole is labelled for screen readers, and pages
//! put the values table and the narration beside it.

use std::fmt::Write as _;

use bright_engine::spc::PointType;
use bright_engine::spc::narrate::Unit;
use maud::{Markup, PreEscaped, html};

use super::palette::{
    CHART_FONT, LIMITS, MEAN, NOTE, POINT_COMMON, POINT_CONCERN, POINT_IMPROVEMENT, POINT_NEUTRAL,
    REFERENCE_BAND, TARGET,
};

/// One period of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint {
    /// The period as people read it (`Mar 2025`, `03/03/2025`).
    pub label: String,
    pub value: Option<f64>,
    /// Centre line, limits: `None` where undefined.
    pub mean: Option<f64>,
    pub lpl: Option<f64>,
    pub upl: Option<f64>,
    /// Which process (rebase group) the point belongs to: lines break between groups.
    pub rebase_group: u32,
    pub point_type: PointType,
}

/// An annotation on a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartNote {
    /// Index of the point (period) it falls in.
    pub point: usize,
    /// True where the process was rebased.
    pub rebase: bool,
    /// What the marker's tooltip says.
    pub text: String,
}

/// What a chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SpcChartView<'a> {
    /// The measure's name.
    pub title: &'a str,
    pub unit: Unit,
    pub points: &'a [ChartPoint],
    pub target: Option<f64>,
    /// Numbered 1, 2, … in this order.
    pub notes: &'a [ChartNote],
    /// Where values usually fall elsewhere (low, high), drawn as a band.
    pub band: Option<(f64, f64)>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 72.0;
/// At most this many period labels under the axis; the rest are in the points' titles.
const MAX_LABELS: usize = 12;

/// The fill and CSS class of a point of this type.
pub fn point_colour(point_type: PointType) -> (&'static str, &'static str) {
    match point_type {
        PointType::CommonCause => (POINT_COMMON, "pt-common"),
        PointType::SpecialCauseImprovement => (POINT_IMPROVEMENT, "pt-imp"),
        PointType::SpecialCauseConcern => (POINT_CONCERN, "pt-con"),
        PointType::SpecialCauseNeutralHigh | PointType::SpecialCauseNeutralLow => {
            (POINT_NEUTRAL, "pt-neu")
        }
    }
}

pub fn meaning(point_type: PointType) -> &'static str {
    match point_type {
        PointType::CommonCause => "common cause",
        PointType::SpecialCauseImprovement => "special cause, improving",
        PointType::SpecialCauseConcern => "special cause, concerning",
        PointType::SpecialCauseNeutralHigh => "special cause, high",
        PointType::SpecialCauseNeutralLow => "special cause, low",
    }
}

/// Round steps (1, 2 or 5 × 10ⁿ) for about five gridlines between `low` and `high`.
pub(crate) fn ticks(low: f64, high: f64) -> Vec<f64> {
    let span = (high - low).max(f64::EPSILON);
    let rough = span / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Coordinates rounded to a tenth of a pixel: enough for the eye, stable as text.
pub(crate) fn px(x: f64) -> String {
    let text = format!("{x:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// The polyline paths of `series`, broken at missing values and where the group changes.
fn paths(
    points: &[ChartPoint],
    y: impl Fn(&ChartPoint) -> Option<f64>,
    x_of: impl Fn(usize) -> f64,
    y_of: impl Fn(f64) -> f64,
) -> String {
    let mut d = String::new();
    let mut previous: Option<u32> = None;
    for (i, point) in points.iter().enumerate() {
        match y(point) {
            Some(value) => {
                let command = if previous == Some(point.rebase_group) {
                    'L'
                } else {
                    'M'
                };
                let _ = write!(d, "{command}{} {}", px(x_of(i)), px(y_of(value)));
                previous = Some(point.rebase_group);
            }
            None => previous = None,
        }
    }
    d
}

/// Where everything of a chart goes, in the chart's own units (a 720 × 320 box): the SVG and
/// the PNG are drawn from the same layout, so they agree point for point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// The value at the bottom and the top of the plot.
    pub low: f64,
    pub high: f64,
    /// Periods across.
    pub n: usize,
}

impl Layout {
    pub const WIDTH: f64 = WIDTH;
    pub const HEIGHT: f64 = HEIGHT;
    /// The plot's box: left, top, right, bottom.
    pub const PLOT: (f64, f64, f64, f64) = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM);

    /// The value range that holds every value, limit, mean and the target, with a margin.
    pub fn of(view: &SpcChartView<'_>) -> Layout {
        let values = view
            .points
            .iter()
            .flat_map(|p| [p.value, p.lpl, p.upl, p.mean])
            .chain([view.target])
            .chain(
                view.band
                    .into_iter()
                    .flat_map(|(low, high)| [Some(low), Some(high)]),
            )
            .flatten()
            .filter(|v| v.is_finite());
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (low, high) = if low.is_finite() {
            (low, high)
        } else {
            (0.0, 1.0)
        };
        let pad = ((high - low) * 0.05)
            .max(high.abs() * 0.01)
            .max(f64::EPSILON);
        Layout {
            low: low - pad,
            high: high + pad,
            n: view.points.len().max(1),
        }
    }

    /// Across: period `i`.
    pub fn x(&self, i: usize) -> f64 {
        let plot_w = WIDTH - LEFT - RIGHT;
        if self.n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (self.n - 1) as f64
        }
    }

    /// Down: value `v`.
    pub fn y(&self, v: f64) -> f64 {
        TOP + (HEIGHT - TOP - BOTTOM) * (self.high - v) / (self.high - self.low)
    }

    /// The gridlines' values.
    pub fn ticks(&self) -> Vec<f64> {
        ticks(self.low, self.high)
    }

    /// Where the `n`th note's marker sits (notes on one period stack downwards).
    pub fn note_marker(&self, notes: &[ChartNote], n: usize) -> (f64, f64) {
        let note = &notes[n];
        let stacked = notes[..n].iter().filter(|o| o.point == note.point).count();
        (self.x(note.point), TOP + 10.0 + 19.0 * stacked as f64)
    }
}

/// The chart as an SVG element that scales to its container's width.
pub fn spc_chart_svg(view: &SpcChartView<'_>) -> Markup {
    let points = view.points;
    let layout = Layout::of(view);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |i: usize| layout.x(i);
    let y_of = |v: f64| layout.y(v);
    let every = points.len().div_ceil(MAX_LABELS).max(1);
    let label = format!("SPC chart of {}", view.title);
    let data = paths(points, |p| p.value, x_of, y_of);
    let mean = paths(points, |p| p.mean, x_of, y_of);
    let lpl = paths(points, |p| p.lpl, x_of, y_of);
    let upl = paths(points, |p| p.upl, x_of, y_of);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            class="spc-chart" role="img" aria-label=(label) font-family=(CHART_FONT) {
            title { (label) }
            @if let Some((low, high)) = view.band {
                rect class="reference" x=(px(LEFT)) y=(px(y_of(high))) width=(px(plot_w))
                    height=(px(y_of(low) - y_of(high))) fill=(REFERENCE_BAND) {
                    title { "Reference range " (view.unit.format(low)) " to " (view.unit.format(high)) }
                }
            }
            g class="grid" {
                @for tick in layout.ticks() {
                    line x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(y_of(tick))) y2=(px(y_of(tick)))
                        stroke="#D9D9D9" stroke-width="1" {}
                    text x=(px(LEFT - 6.0)) y=(px(y_of(tick))) text-anchor="end"
                        dominant-baseline="middle" font-size="11" fill="#404040" {
                        (view.unit.format(tick))
                    }
                }
            }
            rect x=(px(LEFT)) y=(px(TOP)) width=(px(plot_w)) height=(px(plot_h)) fill="none"
                stroke="#A6A6A6" stroke-width="1" {}
            @if let Some(target) = view.target {
                line class="target" x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(y_of(target)))
                    y2=(px(y_of(target))) stroke=(TARGET) stroke-width="1.5"
                    stroke-dasharray="6 4" {
                    title { "Target " (view.unit.format(target)) }
                }
            }
            // Notes' lines lie behind the data, so no point is hidden; their markers are on top.
            @if !view.notes.is_empty() {
                g class="note-lines" {
                    @for note in view.notes.iter().filter(|n| n.point < points.len()) {
                        @let x = x_of(note.point);
                        line x1=(px(x)) x2=(px(x)) y1=(px(TOP)) y2=(px(HEIGHT - BOTTOM)) stroke=(NOTE)
                            stroke-width=(if note.rebase { "2" } else { "1.5" })
                            stroke-dasharray=(if note.rebase { "none" } else { "2 3" }) {}
                    }
                }
            }
            path class="limit" d=(lpl) fill="none" stroke=(LIMITS) stroke-width="1.5" stroke-dasharray="6 4" {}
            path class="limit" d=(upl) fill="none" stroke=(LIMITS) stroke-width="1.5" stroke-dasharray="6 4" {}
            path class="mean" d=(mean) fill="none" stroke=(MEAN) stroke-width="1.5" {}
            path class="data" d=(data) fill="none" stroke=(POINT_COMMON) stroke-width="1.5" {}
            g class="points" {
                @for (i, point) in points.iter().enumerate() {
                    @if let Some(value) = point.value {
                        @let (fill, class) = point_colour(point.point_type);
                        circle class=(class) cx=(px(x_of(i))) cy=(px(y_of(value))) r="4" fill=(fill) {
                            title { (point.label) ": " (view.unit.format(value)) " (" (meaning(point.point_type)) ")" }
                        }
                    }
                }
            }
            @if !view.notes.is_empty() {
                g class="notes" {
                    @for (n, note) in view.notes.iter().enumerate().filter(|(_, n)| n.point < points.len()) {
                        @let (x, y) = layout.note_marker(view.notes, n);
                        g class=(if note.rebase { "note rebase" } else { "note" }) {
                            title { (n + 1) ". " (note.text) }
                            circle cx=(px(x)) cy=(px(y)) r="9" fill=(NOTE) {}
                            text x=(px(x)) y=(px(y)) text-anchor="middle" dominant-baseline="central"
                                font-size="11" font-weight="bold" fill="#FFFFFF" { (n + 1) }
                        }
                    }
                }
            }
            g class="periods" font-size="11" fill="#404040" {
                @for (i, point) in points.iter().enumerate().filter(|(i, _)| i % every == 0) {
                    text text-anchor="end" transform=(PreEscaped(format!(
                        "translate({} {}) rotate(-45)", px(x_of(i)), px(HEIGHT - BOTTOM + 14.0)
                    ))) { (point.label) }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bright_engine::spc::{Improvement, Rules, XmrOptions, xmr};

    /// Two years of monthly four-hour performance: one month far above the rest, a month
    /// missing, and a step up after a change in month 15, rebased there.
    pub(crate) fn series() -> Vec<ChartPoint> {
        let values: Vec<Option<f64>> = (0..24)
            .map(|i| {
                let wobble = [0.0, 0.012, -0.008, 0.004, -0.011, 0.007][i % 6];
                let level = if i < 15 { 0.72 } else { 0.78 };
                match i {
                    5 => Some(0.80),
                    9 => None,
                    _ => Some(level + wobble),
                }
            })
            .collect();
        let rebase: Vec<bool> = (0..24).map(|i| i == 15).collect();
        let options = XmrOptions {
            improvement: Improvement::Increase,
            target: Some(0.78),
            fix_after_n_points: None,
            no_screen_outliers: false,
            rules: Rules::default(),
        };
        let chart = xmr(&values, &rebase, &options).expect("charts");
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        chart
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| ChartPoint {
                label: format!("{} {}", months[i % 12], 2024 + i / 12),
                value: p.value,
                mean: Some(p.mean).filter(|m| m.is_finite()),
                lpl: Some(p.lpl).filter(|m| m.is_finite()),
                upl: Some(p.upl).filter(|m| m.is_finite()),
                rebase_group: p.rebase_group,
                point_type: p.point_type,
            })
            .collect()
    }

    pub(crate) fn notes() -> Vec<ChartNote> {
        vec![
            ChartNote {
                point: 5,
                rebase: false,
                text: "Jun 2024: Escalation ward open (j.smith)".into(),
            },
            ChartNote {
                point: 15,
                rebase: true,
                text: "Apr 2025: Rebased: new front-door model (j.smith)".into(),
            },
        ]
    }

    pub(crate) fn view<'a>(points: &'a [ChartPoint], notes: &'a [ChartNote]) -> SpcChartView<'a> {
        SpcChartView {
            title: "ED four-hour performance",
            unit: Unit::Percent,
            points,
            target: Some(0.78),
            notes,
            band: Some((0.70, 0.76)),
        }
    }

    #[test]
    fn the_chart_matches_its_golden_svg() {
        let (points, notes) = (series(), notes());
        let svg = format!("{}\n", spc_chart_svg(&view(&points, &notes)).into_string());
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/charts/xmr.svg");
        if std::env::var_os("BRIGHT_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("creates");
            std::fs::write(&path, &svg).expect("writes");
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (BRIGHT_BLESS=1 writes it)", path.display()));
        assert_eq!(svg, golden);
    }

    #[test]
    fn points_lines_and_breaks_follow_the_series() {
        let (points, notes) = (series(), notes());
        let svg = spc_chart_svg(&view(&points, &notes)).into_string();
        // One circle per value present, each with its period in a title, and one per note.
        let present = points.iter().filter(|p| p.value.is_some()).count();
        assert_eq!(svg.matches("<circle ").count(), present + notes.len());
        // Notes are numbered in order, the rebase drawn solid.
        assert!(
            svg.contains("<title>1. Jun 2024: Escalation ward open"),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<g class="note rebase"><title>2. Apr 2025"#),
            "{svg}"
        );
        assert!(svg.contains("<title>Mar 2024: "), "{svg}");
        // The missing month breaks the data line; the rebase breaks mean and limits too.
        let path_of = |class: &str| {
            let start =
                svg.find(&format!(r#"class="{class}" d=""#)).expect(class) + class.len() + 12;
            svg[start..].split('"').next().expect("d").to_string()
        };
        assert_eq!(
            path_of("data").matches('M').count(),
            3,
            "missing value and rebase"
        );
        assert_eq!(path_of("mean").matches('M').count(), 2, "one per process");
        // Special cause shows in colour and in words.
        let special = points
            .iter()
            .filter(|p| p.point_type == PointType::SpecialCauseImprovement)
            .count();
        assert!(special > 0);
        assert_eq!(svg.matches(r#"class="pt-imp""#).count(), special);
        assert_eq!(svg.matches("(special cause, improving)").count(), special);
        assert!(svg.contains("<title>Target 78%</title>"));
        // Labels are thinned to at most a dozen.
        assert!(svg.matches("rotate(-45)").count() <= MAX_LABELS);
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(ticks(0.0, 10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.693, 0.812);
        assert!(t.len() >= 3 && t.len() <= 7, "{t:?}");
        assert!(t.iter().all(|v| (0.693..=0.812).contains(v)), "{t:?}");
    }
}
