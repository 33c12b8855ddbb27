//! A KPI among its peers for one period, where the lake holds several organisations: a funnel
//! plot for proportions (each organisation's value against its denominator, with the pooled
//! mean and the 95% and 99.8% limits that narrow as the denominator grows, so small trusts are
//! not called outliers for noise), and for other KPIs the quartiles with every organisation as
//! a dot. The organisation the viewer chose is drawn larger and named.

use bright_engine::spc::narrate::Unit;
use maud::{Markup, html};
use serde::Serialize;

use super::palette::{CHART_FONT, LIMITS, MEAN, NOTE, POINT_COMMON, POINT_CONCERN};
use super::spc::{px, ticks};

/// z of the two funnel limits: 95% and 99.8% two-sided.
pub const Z95: f64 = 1.959_964;
pub const Z998: f64 = 3.090_232;

/// One organisation's value for the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    pub org_code: String,
    pub value: f64,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// Outside the 99.8% funnel limits (funnel plots only).
    pub outside: bool,
}

/// The peers and the statistics drawn with them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peers {
    /// `funnel` (proportions) or `quartiles`.
    pub kind: &'static str,
    /// The period, as charts label it.
    pub period: String,
    /// Pooled mean (funnel) or median (quartiles).
    pub centre: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    /// Highest value first.
    pub rows: Vec<Peer>,
}

/// The `p` quantile of sorted `xs`, interpolated (R's type 7).
fn quantile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let h = (xs.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    xs[lo] + (h - lo as f64) * (xs[hi] - xs[lo])
}

/// The funnel limit `z` standard errors from the pooled proportion `p` at denominator `n`.
pub fn funnel_limit(p: f64, n: f64, z: f64) -> f64 {
    (p + z * (p * (1.0 - p) / n).sqrt()).clamp(0.0, 1.0)
}

/// `rows` (organisation, value, numerator, denominator) as peers: a funnel when every row has
/// a positive denominator and `proportion` is true, quartiles otherwise. `None` for fewer
/// than three organisations.
pub fn peers(
    period: String,
    rows: Vec<(String, f64, Option<f64>, Option<f64>)>,
    proportion: bool,
) -> Option<Peers> {
    if rows.len() < 3 {
        return None;
    }
    let mut values: Vec<f64> = rows.iter().map(|r| r.1).collect();
    values.sort_by(f64::total_cmp);
    let (q1, median, q3) = (
        quantile(&values, 0.25),
        quantile(&values, 0.5),
        quantile(&values, 0.75),
    );
    let funnel = proportion
        && rows
            .iter()
            .all(|r| r.2.is_some() && r.3.is_some_and(|d| d > 0.0));
    let centre = if funnel {
        let num: f64 = rows.iter().filter_map(|r| r.2).sum();
        let den: f64 = rows.iter().filter_map(|r| r.3).sum();
        num / den
    } else {
        median
    };
    let mut peers: Vec<Peer> = rows
        .into_iter()
        .map(|(org_code, value, numerator, denominator)| {
            let outside = funnel
                && denominator.is_some_and(|n| {
                    value > funnel_limit(centre, n, Z998) || value < funnel_limit(centre, n, -Z998)
                });
            Peer {
                org_code,
                value,
                numerator,
                denominator,
                outside,
            }
        })
        .collect();
    peers.sort_by(|a, b| b.value.total_cmp(&a.value));
    Some(Peers {
        kind: if funnel { "funnel" } else { "quartiles" },
        period,
        centre,
        q1,
        median,
        q3,
        rows: peers,
    })
}

/// The chart's box and margins, in the SPC charts' units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// The peers as an SVG chart; `chosen` is the organisation to pick out.
pub fn peers_svg(title: &str, unit: Unit, peers: &Peers, chosen: Option<&str>) -> Markup {
    let label = format!("{title} among its peers, {}", peers.period);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    // A funnel opens from a fiftieth of the largest denominator, so its shape shows; the
    // value axis holds every organisation and the limits at the smallest one.
    let dens: Vec<f64> = peers.rows.iter().filter_map(|p| p.denominator).collect();
    let max_n = dens.iter().copied().fold(1.0, f64::max) * 1.05;
    let smallest = dens.iter().copied().fold(f64::INFINITY, f64::min);
    let min_n = (max_n / 50.0).min(smallest * 0.9).max(1.0);
    let mut extent: Vec<f64> = peers.rows.iter().map(|p| p.value).collect();
    if peers.kind == "funnel" && smallest.is_finite() {
        extent.push(funnel_limit(peers.centre, smallest, Z998));
        extent.push(funnel_limit(peers.centre, smallest, -Z998));
    }
    let (mut low, mut high) = extent
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        });
    let pad = ((high - low) * 0.08).max(high.abs() * 0.02).max(1e-9);
    low -= pad;
    high += pad;
    let y_of = |v: f64| TOP + plot_h * (high - v) / (high - low);
    let is_chosen = |p: &Peer| chosen == Some(p.org_code.as_str());
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            class="peers-chart" role="img" aria-label=(label) font-family=(CHART_FONT) {
            title { (label) }
            rect x=(px(LEFT)) y=(px(TOP)) width=(px(plot_w)) height=(px(plot_h)) fill="none"
                stroke="#A6A6A6" stroke-width="1" {}
            @for tick in ticks(low, high) {
                line x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(y_of(tick))) y2=(px(y_of(tick)))
                    stroke="#D9D9D9" stroke-width="1" {}
                text x=(px(LEFT - 6.0)) y=(px(y_of(tick))) text-anchor="end" dominant-baseline="middle"
                    font-size="11" fill="#404040" { (unit.format(tick)) }
            }
            @if peers.kind == "funnel" {
                @let x_of = |n: f64| LEFT + plot_w * (n - min_n) / (max_n - min_n).max(1.0);
                @let curve = |z: f64| {
                    (0..=60).map(|i| {
                        let n = min_n + (max_n - min_n) * f64::from(i) / 60.0;
                        let y = y_of(funnel_limit(peers.centre, n, z).clamp(low, high));
                        format!("{}{} {}", if i == 0 { 'M' } else { 'L' }, px(x_of(n)), px(y))
                    }).collect::<String>()
                };
                path class="centre" d={ "M" (px(LEFT)) " " (px(y_of(peers.centre))) "L" (px(WIDTH - RIGHT)) " " (px(y_of(peers.centre))) }
                    stroke=(MEAN) stroke-width="1.5" fill="none" {}
                @for z in [Z95, -Z95] {
                    path class="limit95" d=(curve(z)) stroke=(LIMITS) stroke-width="1.5" stroke-dasharray="3 3" fill="none" {}
                }
                @for z in [Z998, -Z998] {
                    path class="limit998" d=(curve(z)) stroke=(LIMITS) stroke-width="1.5" stroke-dasharray="8 4" fill="none" {}
                }
                @for p in &peers.rows {
                    @if let Some(n) = p.denominator {
                        @let fill = if is_chosen(p) { NOTE } else if p.outside { POINT_CONCERN } else { POINT_COMMON };
                        circle class=(if is_chosen(p) { "peer chosen" } else { "peer" }) cx=(px(x_of(n))) cy=(px(y_of(p.value)))
                            r=(if is_chosen(p) { "7" } else { "4" }) fill=(fill) {
                            title { (p.org_code) ": " (unit.format(p.value)) " of " (n) @if p.outside { " (outside the 99.8% limits)" } }
                        }
                        @if is_chosen(p) {
                            text x=(px(x_of(n) + 10.0)) y=(px(y_of(p.value))) dominant-baseline="middle" font-size="12"
                                font-weight="bold" fill="#212B32" { (p.org_code) }
                        }
                    }
                }
                @for tick in ticks(min_n, max_n) {
                    text x=(px(x_of(tick))) y=(px(HEIGHT - BOTTOM + 14.0)) text-anchor="middle" font-size="11" fill="#404040" {
                        (format!("{tick:.0}"))
                    }
                }
                text x=(px(LEFT + plot_w / 2.0)) y=(px(HEIGHT - 6.0)) text-anchor="middle" font-size="11" fill="#404040" {
                    "Denominator (size) →"
                }
            } @else {
                @let count = peers.rows.len().max(1) as f64;
                @let x_of = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / count;
                rect class="iqr" x=(px(LEFT)) y=(px(y_of(peers.q3))) width=(px(plot_w))
                    height=(px(y_of(peers.q1) - y_of(peers.q3))) fill="#EBF3FA" {
                    title { "Middle half of organisations: " (unit.format(peers.q1)) " to " (unit.format(peers.q3)) }
                }
                path class="centre" d={ "M" (px(LEFT)) " " (px(y_of(peers.median))) "L" (px(WIDTH - RIGHT)) " " (px(y_of(peers.median))) }
                    stroke=(MEAN) stroke-width="1.5" fill="none" {}
                @for (i, p) in peers.rows.iter().enumerate() {
                    circle class=(if is_chosen(p) { "peer chosen" } else { "peer" }) cx=(px(x_of(i))) cy=(px(y_of(p.value)))
                        r=(if is_chosen(p) { "7" } else { "4" }) fill=(if is_chosen(p) { NOTE } else { POINT_COMMON }) {
                        title { (p.org_code) ": " (unit.format(p.value)) }
                    }
                    @if is_chosen(p) {
                        text x=(px(x_of(i))) y=(px(y_of(p.value) - 12.0)) text-anchor="middle" font-size="12"
                            font-weight="bold" fill="#212B32" { (p.org_code) }
                    }
                }
                text x=(px(LEFT + plot_w / 2.0)) y=(px(HEIGHT - 10.0)) text-anchor="middle" font-size="11" fill="#404040" {
                    "Organisations, highest first"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_funnel_pools_the_proportion_and_flags_only_what_is_beyond_chance() {
        // Three trusts near 68%; at 60%, a small trust (within chance for 100 patients) and a
        // large one (beyond it for 2,000).
        let rows = vec![
            ("A".to_string(), 0.68, Some(1_360.0), Some(2_000.0)),
            ("B".to_string(), 0.69, Some(1_380.0), Some(2_000.0)),
            ("C".to_string(), 0.67, Some(1_340.0), Some(2_000.0)),
            ("SMALL".to_string(), 0.60, Some(60.0), Some(100.0)),
            ("LARGE".to_string(), 0.60, Some(1_200.0), Some(2_000.0)),
        ];
        let peers = peers("Mar 2026".into(), rows, true).expect("five peers");
        assert_eq!(peers.kind, "funnel");
        let pooled = (1_360.0 + 1_380.0 + 1_340.0 + 60.0 + 1_200.0) / 8_100.0;
        assert!((peers.centre - pooled).abs() < 1e-12);
        let outside: Vec<&str> = peers
            .rows
            .iter()
            .filter(|p| p.outside)
            .map(|p| p.org_code.as_str())
            .collect();
        assert_eq!(outside, ["LARGE"]);
        // 99.8% limit at n = 100 by hand: p ± 3.090232 × √(p(1−p)/100).
        let by_hand = pooled - 3.090_232 * (pooled * (1.0 - pooled) / 100.0).sqrt();
        assert!((funnel_limit(pooled, 100.0, -Z998) - by_hand).abs() < 1e-12);
        let svg = peers_svg(
            "Four-hour performance",
            Unit::Percent,
            &peers,
            Some("SMALL"),
        )
        .into_string();
        assert_eq!(svg.matches("<circle ").count(), 5);
        assert_eq!(svg.matches(r#"class="peer chosen""#).count(), 1);
        assert_eq!(svg.matches(r#"class="limit998""#).count(), 2);
    }

    #[test]
    fn other_kpis_show_quartiles_and_too_few_peers_show_nothing() {
        let rows: Vec<_> = [10.0, 20.0, 30.0, 40.0]
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("T{i}"), *v, Some(*v), None))
            .collect();
        let peers = peers("w/c 2 Mar 2026".into(), rows.clone(), false).expect("four");
        assert_eq!(peers.kind, "quartiles");
        // R's quantile(c(10, 20, 30, 40)): 17.5, 25, 32.5.
        assert_eq!((peers.q1, peers.median, peers.q3), (17.5, 25.0, 32.5));
        assert_eq!(peers.rows[0].org_code, "T3", "highest first");
        assert!(peers.rows.iter().all(|p| !p.outside));
        assert!(super::peers("x".into(), rows[..2].to_vec(), false).is_none());
    }
}
