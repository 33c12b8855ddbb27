//! A sparkline: the last periods of a KPI in a line a table cell can hold, with the latest
//! points coloured by their meaning and the mean as a thin line. It is decoration beside the
//! numbers and icons of its row, so it is hidden from screen readers.

use std::fmt::Write as _;

use maud::{Markup, html};

use super::palette::{MEAN, POINT_COMMON};
use super::spc::{ChartPoint, point_colour};

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 32.0;
const PAD: f64 = 4.0;

/// The last `n` points of `points` as a small SVG.
pub fn sparkline_svg(points: &[ChartPoint], n: usize) -> Markup {
    let shown = &points[points.len().saturating_sub(n)..];
    let values = shown
        .iter()
        .flat_map(|p| [p.value, p.mean])
        .flatten()
        .filter(|v| v.is_finite());
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (low, high) = if low.is_finite() && high > low {
        (low, high)
    } else if low.is_finite() {
        (low - 1.0, high + 1.0)
    } else {
        (0.0, 1.0)
    };
    let step = (WIDTH - 2.0 * PAD) / (shown.len().max(2) - 1) as f64;
    let x = |i: usize| PAD + step * i as f64;
    let y = |v: f64| PAD + (HEIGHT - 2.0 * PAD) * (high - v) / (high - low);
    let mut line = String::new();
    let mut pen_down = false;
    for (i, p) in shown.iter().enumerate() {
        match p.value {
            Some(v) => {
                let _ = write!(
                    line,
                    "{}{:.1} {:.1}",
                    if pen_down { 'L' } else { 'M' },
                    x(i),
                    y(v)
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let mean = shown.last().and_then(|p| p.mean);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            width=(WIDTH) height=(HEIGHT) aria-hidden="true" focusable="false" {
            @if let Some(mean) = mean {
                line x1=(PAD) x2=(WIDTH - PAD) y1=(format!("{:.1}", y(mean))) y2=(format!("{:.1}", y(mean)))
                    stroke=(MEAN) stroke-width="0.75" {}
            }
            path d=(line) fill="none" stroke=(POINT_COMMON) stroke-width="1.5" {}
            @for (i, p) in shown.iter().enumerate() {
                @if let Some(v) = p.value {
                    circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(v))) r="2.5"
                        fill=(point_colour(p.point_type).0) {}
                }
            }
        }
    }
}
