//! Every chart type as one [`ControlChart`]: the centre line, the three-sigma limits and the
//! two-sigma lines as qicharts2 0.8.1 computes them (Montgomery's formulas; Laney's for p′
//! and u′), each point judged by the Making Data Count rules, and each process (rebase group)
//! by Anhøj's run analysis. The XmR chart is Making Data Count's, as [`super::xmr`] computes
//! it to match NHSRplotthedots; here it gains the same run analysis.
//!
//! | chart | plots | centre line | limits (σ per point) |
//! |---|---|---|---|
//! | p | events / trials | p̄ = Σevents / Σtrials | p̄ ± 3√(p̄(1−p̄)/nᵢ), within [0, 1] |
//! | p′ | as p | as p | as p, σ × σ_z (Laney 2002) |
//! | u | count / exposure | ū = Σcount / Σexposure | ū ± 3√(ū/nᵢ), at least 0 |
//! | u′ | as u | as u | as u, σ × σ_z (Laney 2002) |
//! | c | count | c̄ | c̄ ± 3√c̄, at least 0 |
//! | g | cases between events | the median | ḡ ± 3√(ḡ(ḡ+1)) from the mean ḡ, at least 0 |
//! | t | time between events | I chart of x^(1/3.6), back-transformed | lower at least 0 |
//! | mR | moving range | MR̄ | 0 and 3.267 × MR̄ |
//! | run | any measure | the median | none |
//!
//! Laney's σ_z is the mean moving range of the points' z-scores over d2 = 1.128, after the
//! same screening of moving ranges Making Data Count applies (ranges of 3.267 × their mean or
//! more are dropped): it widens the limits of p and u charts with very large denominators,
//! where between-period variation swamps the binomial or Poisson variation. The t chart's I
//! chart uses σ = MR̄ / 1.128 (screened the same way), not Making Data Count's 2.66 × MR̄.
//! Each rebase group is its own process; `fix_after_n_points` takes the centre and limits
//! from a group's first rows, while the run analysis covers all of them.

use super::rules::{Band, Flags, classify};
use super::run::{Runs, runs};
use super::xmr::{
    AssuranceIcon, Improvement, LIMIT_CLOSE, MIN_FIX_AFTER, MR_SCREEN, PointType, SpecialCause,
    VariationIcon, XmrOptions, check_rules, xmr,
};
use super::{SpcError, compensated_sum, r_mean, r_median};

/// The t chart's power transform: times between events to the 1/3.6 are nearly normal.
pub const T_POWER: f64 = 3.6;
/// d2 for moving ranges of two: σ = MR̄ / d2.
pub const D2: f64 = 1.128;
/// Upper limit of the mR chart as a multiple of the mean moving range (D4 for n = 2).
pub const MR_UPPER: f64 = 3.267;

/// Chart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Making Data Count XmR (individuals).
    Xmr,
    /// Moving ranges.
    Mr,
    /// Proportions.
    P,
    /// Proportions with Laney's correction.
    PPrime,
    /// Rates per unit of exposure.
    U,
    /// Rates with Laney's correction.
    UPrime,
    /// Counts per period.
    C,
    /// Cases (opportunities) between rare events.
    G,
    /// Time between rare events.
    T,
    /// Run chart around the median, judged by Anhøj's rules.
    Run,
}

impl ChartKind {
    /// Every chart type, in the order the CLI lists them.
    pub const ALL: [ChartKind; 10] = [
        ChartKind::Xmr,
        ChartKind::Mr,
        ChartKind::P,
        ChartKind::PPrime,
        ChartKind::U,
        ChartKind::UPrime,
        ChartKind::C,
        ChartKind::G,
        ChartKind::T,
        ChartKind::Run,
    ];

    /// The name used in KPI manifests and the CLI: `xmr`, `mr`, `p`, `pp`, `u`, `up`, `c`,
    /// `g`, `t`, `run`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Xmr => "xmr",
            ChartKind::Mr => "mr",
            ChartKind::P => "p",
            ChartKind::PPrime => "pp",
            ChartKind::U => "u",
            ChartKind::UPrime => "up",
            ChartKind::C => "c",
            ChartKind::G => "g",
            ChartKind::T => "t",
            ChartKind::Run => "run",
        }
    }

    /// Whether the chart needs a denominator per point.
    pub fn needs_denominator(self) -> bool {
        matches!(
            self,
            ChartKind::P | ChartKind::PPrime | ChartKind::U | ChartKind::UPrime
        )
    }

    /// What the chart draws as its centre line.
    pub fn centre_line(self) -> CentreLine {
        match self {
            ChartKind::Xmr | ChartKind::C => CentreLine::Mean,
            ChartKind::P | ChartKind::PPrime | ChartKind::U | ChartKind::UPrime => {
                CentreLine::Pooled
            }
            ChartKind::G | ChartKind::Run => CentreLine::Median,
            ChartKind::Mr => CentreLine::MeanMovingRange,
            ChartKind::T => CentreLine::BackTransformedMean,
        }
    }

    /// The smallest `fix_after_n_points` the chart accepts: Making Data Count asks for at
    /// least 12 baseline points on an XmR chart; qicharts2 takes any baseline.
    pub fn min_fix_after(self) -> usize {
        if self == ChartKind::Xmr {
            MIN_FIX_AFTER
        } else {
            1
        }
    }
}

impl std::str::FromStr for ChartKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChartKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown chart type '{s}' (xmr, mr, p, pp, u, up, c, g, t, run)")
            })
    }
}

/// What a chart's centre line is, shown beside it so nobody has to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CentreLine {
    /// The mean of the baseline values.
    Mean,
    /// Σnumerators ÷ Σdenominators over the baseline.
    Pooled,
    /// The median of the baseline values (g: the limits still come from the mean).
    Median,
    /// The mean of the baseline's moving ranges.
    MeanMovingRange,
    /// The mean of the baseline's times to the 1/3.6, raised back to the 3.6.
    BackTransformedMean,
}

impl CentreLine {
    /// `mean`, `pooled`, `median`, `mean_moving_range` or `back_transformed_mean`.
    pub fn as_str(self) -> &'static str {
        match self {
            CentreLine::Mean => "mean",
            CentreLine::Pooled => "pooled",
            CentreLine::Median => "median",
            CentreLine::MeanMovingRange => "mean_moving_range",
            CentreLine::BackTransformedMean => "back_transformed_mean",
        }
    }
}

/// One point of a chart. Lines a chart does not have, or cannot compute, are NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlPoint {
    /// The plotted statistic (proportion, rate, count, moving range…), or `None`.
    pub value: Option<f64>,
    /// Rebase group, numbered as on XmR charts.
    pub rebase_group: u32,
    /// Centre line as drawn.
    pub centre: f64,
    /// Lower three-sigma limit.
    pub lcl: f64,
    /// Upper three-sigma limit.
    pub ucl: f64,
    /// Lower two-sigma line.
    pub lower_two_sigma: f64,
    /// Upper two-sigma line.
    pub upper_two_sigma: f64,
    /// The value lies strictly outside the three-sigma limits.
    pub outside_limits: bool,
    /// The Making Data Count rule that labels the point.
    pub special_cause: SpecialCause,
    /// Improvement, concern, neutral or common cause.
    pub point_type: PointType,
}

/// One process (rebase group) of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlGroup {
    /// Its number.
    pub rebase_group: u32,
    /// Its first row.
    pub start: usize,
    /// Its rows.
    pub rows: usize,
    /// The rows its centre and limits come from.
    pub baseline_rows: usize,
    /// Anhøj's run analysis of all its rows.
    pub runs: Runs,
}

/// A computed chart of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlChart {
    /// Which chart.
    pub kind: ChartKind,
    /// One per input row.
    pub points: Vec<ControlPoint>,
    /// One per rebase group, in order.
    pub groups: Vec<ControlGroup>,
    /// From the latest point.
    pub variation_icon: Option<VariationIcon>,
    /// Target against the latest limits.
    pub assurance_icon: Option<AssuranceIcon>,
}

/// The lines at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lines {
    centre: f64,
    lcl: f64,
    ucl: f64,
    lower: f64,
    upper: f64,
}

impl Lines {
    /// Three- and two-sigma lines `sigma` either side of `centre`.
    fn around(centre: f64, sigma: f64) -> Self {
        Lines {
            centre,
            lcl: centre - 3.0 * sigma,
            ucl: centre + 3.0 * sigma,
            lower: centre - 2.0 * sigma,
            upper: centre + 2.0 * sigma,
        }
    }

    /// Lower lines below zero are raised to it (counts and rates cannot be negative).
    fn floor_at_zero(mut self) -> Self {
        for line in [&mut self.lcl, &mut self.lower] {
            if *line < 0.0 {
                *line = 0.0;
            }
        }
        self
    }

    /// Upper lines above one are lowered to it (proportions cannot exceed one).
    fn cap_at_one(mut self) -> Self {
        for line in [&mut self.ucl, &mut self.upper] {
            if *line > 1.0 {
                *line = 1.0;
            }
        }
        self
    }

    /// Infinite lines (from a zero denominator) are no lines at all.
    fn finite(mut self) -> Self {
        for line in [
            &mut self.centre,
            &mut self.lcl,
            &mut self.ucl,
            &mut self.lower,
            &mut self.upper,
        ] {
            if line.is_infinite() {
                *line = f64::NAN;
            }
        }
        self
    }

    const NONE: Lines = Lines {
        centre: f64::NAN,
        lcl: f64::NAN,
        ucl: f64::NAN,
        lower: f64::NAN,
        upper: f64::NAN,
    };
}

/// One group's plotted values, lines and run analysis.
struct GroupChart {
    stat: Vec<Option<f64>>,
    lines: Vec<Lines>,
    runs: Runs,
}

/// Computes a chart of `kind` for `values` (the numerators, for p and u charts, over
/// `denominators`); `rebase[i]` starts a new process at row `i`.
pub fn control_chart(
    kind: ChartKind,
    values: &[Option<f64>],
    denominators: Option<&[Option<f64>]>,
    rebase: &[bool],
    options: &XmrOptions,
) -> Result<ControlChart, SpcError> {
    super::xmr::check_lengths(values, rebase)?;
    check_rules(&options.rules)?;
    for column in [Some(values), denominators].into_iter().flatten() {
        if let Some(index) = column
            .iter()
            .position(|v| v.is_some_and(|v| !v.is_finite()))
        {
            return Err(SpcError::NotFinite { index });
        }
    }
    let denominators = match (kind.needs_denominator(), denominators) {
        (true, Some(d)) if d.len() == values.len() => Some(d),
        (true, Some(d)) => {
            return Err(SpcError::LengthMismatch {
                values: values.len(),
                rebase: d.len(),
            });
        }
        (true, None) => {
            return Err(SpcError::MissingDenominator {
                chart: kind.as_str(),
            });
        }
        (false, _) => None,
    };
    if let Some(n) = options.fix_after_n_points
        && n < kind.min_fix_after()
    {
        return Err(SpcError::FixAfterTooSmall {
            n,
            min: kind.min_fix_after(),
        });
    }
    check_range(kind, values, denominators)?;
    if kind == ChartKind::Xmr {
        return xmr_chart(values, rebase, options);
    }

    let mut points = Vec::with_capacity(values.len());
    let mut groups = Vec::new();
    let mut group = 0u32;
    let mut start = 0;
    while start < values.len() {
        group += u32::from(rebase[start]);
        let end = (start + 1..values.len())
            .find(|&i| rebase[i])
            .unwrap_or(values.len());
        let y = &values[start..end];
        let baseline_rows = options
            .fix_after_n_points
            .unwrap_or(usize::MAX)
            .min(y.len());
        let charted = match kind {
            ChartKind::P | ChartKind::PPrime | ChartKind::U | ChartKind::UPrime => {
                let den = denominators.map_or(&[][..], |d| &d[start..end]);
                rates(kind, y, den, baseline_rows, options)
            }
            ChartKind::C => counts(y, baseline_rows),
            ChartKind::G => between_events(y, baseline_rows),
            ChartKind::T => times(y, baseline_rows, options),
            ChartKind::Mr => moving_ranges(y, baseline_rows),
            ChartKind::Run => medians(y, baseline_rows),
            ChartKind::Xmr => unreachable!("XmR charts returned above"),
        };
        let bands = |i: usize| {
            let l = charted.lines[i];
            Band {
                centre: l.centre,
                lcl: l.lcl,
                ucl: l.ucl,
                near_lcl: l.lower,
                near_ucl: l.upper,
            }
        };
        let flags = Flags::of(&charted.stat, bands);
        let causes = classify(&charted.stat, &flags, &options.rules);
        for ((value, lines), cause) in charted.stat.iter().zip(&charted.lines).zip(causes) {
            points.push(ControlPoint {
                value: *value,
                rebase_group: group,
                centre: lines.centre,
                lcl: lines.lcl,
                ucl: lines.ucl,
                lower_two_sigma: lines.lower,
                upper_two_sigma: lines.upper,
                outside_limits: value.is_some_and(|v| v > lines.ucl || v < lines.lcl),
                special_cause: cause,
                point_type: PointType::from_cause(cause, options.improvement),
            });
        }
        groups.push(ControlGroup {
            rebase_group: group,
            start,
            rows: y.len(),
            baseline_rows,
            runs: charted.runs,
        });
        start = end;
    }
    Ok(finish(kind, points, groups, options))
}

/// The icons, from the latest point (variation) and the latest limits there are (assurance).
fn finish(
    kind: ChartKind,
    points: Vec<ControlPoint>,
    groups: Vec<ControlGroup>,
    options: &XmrOptions,
) -> ControlChart {
    let variation_icon = points
        .last()
        .map(|p| VariationIcon::from_point(p.point_type, options.improvement));
    // p and u limits vary with the denominator and a missing period has none: judge the
    // target against the latest limits drawn.
    let limits = points
        .iter()
        .rev()
        .find(|p| !p.lcl.is_nan() || !p.ucl.is_nan())
        .or(points.last());
    let assurance_icon = match (options.target, limits) {
        (Some(target), Some(p)) if options.improvement != Improvement::Neutral => Some(
            AssuranceIcon::from_limits(target, p.lcl, p.ucl, options.improvement),
        ),
        _ => None,
    };
    ControlChart {
        kind,
        points,
        groups,
        variation_icon,
        assurance_icon,
    }
}

/// Values the chart cannot take are refused with their position.
fn check_range(
    kind: ChartKind,
    values: &[Option<f64>],
    denominators: Option<&[Option<f64>]>,
) -> Result<(), SpcError> {
    let refuse = |index: usize, reason: &'static str| Err(SpcError::OutOfRange { index, reason });
    for (index, v) in values.iter().enumerate() {
        let Some(v) = *v else { continue };
        let d = denominators.and_then(|d| d[index]);
        match kind {
            ChartKind::T if v <= 0.0 => {
                return refuse(index, "is not above zero: a time between events must be");
            }
            ChartKind::C | ChartKind::G if v < 0.0 => {
                return refuse(index, "is negative: a count cannot be");
            }
            ChartKind::P | ChartKind::PPrime | ChartKind::U | ChartKind::UPrime if v < 0.0 => {
                return refuse(index, "has a negative numerator");
            }
            ChartKind::P | ChartKind::PPrime if d.is_some_and(|d| d > 0.0 && v > d) => {
                return refuse(
                    index,
                    "has a numerator above its denominator: a proportion cannot exceed 1",
                );
            }
            _ => {}
        }
        if d.is_some_and(|d| d < 0.0) {
            return refuse(index, "has a negative denominator");
        }
    }
    Ok(())
}

/// Making Data Count's XmR chart, with its close-to-limit lines as the two-sigma lines and
/// the run analysis of each group around its mean.
fn xmr_chart(
    values: &[Option<f64>],
    rebase: &[bool],
    options: &XmrOptions,
) -> Result<ControlChart, SpcError> {
    let chart = xmr(values, rebase, options)?;
    let mut points = Vec::with_capacity(chart.points.len());
    let mut groups = Vec::with_capacity(chart.segments.len());
    for s in &chart.segments {
        let rows = &chart.points[s.start..s.start + s.rows];
        let lower = s.mean - LIMIT_CLOSE * s.mean_moving_range;
        let upper = s.mean + LIMIT_CLOSE * s.mean_moving_range;
        points.extend(rows.iter().map(|p| ControlPoint {
            value: p.value,
            rebase_group: p.rebase_group,
            centre: p.mean,
            lcl: p.lpl,
            ucl: p.upl,
            lower_two_sigma: lower,
            upper_two_sigma: upper,
            outside_limits: p.outside_limits == Some(true),
            special_cause: p.special_cause,
            point_type: p.point_type,
        }));
        let y: Vec<Option<f64>> = rows.iter().map(|p| p.value).collect();
        groups.push(ControlGroup {
            rebase_group: s.rebase_group,
            start: s.start,
            rows: s.rows,
            baseline_rows: options.fix_after_n_points.unwrap_or(usize::MAX).min(s.rows),
            runs: runs(&y, s.mean),
        });
    }
    Ok(ControlChart {
        kind: ChartKind::Xmr,
        points,
        groups,
        variation_icon: chart.variation_icon,
        assurance_icon: chart.assurance_icon,
    })
}

/// The mean of moving ranges, then (unless turned off) again without the ranges of 3.267 ×
/// that mean or more: the screening Making Data Count and qicharts2 both apply.
fn screened_mean(ranges: &[f64], options: &XmrOptions) -> f64 {
    let mean = r_mean(ranges.iter().copied());
    if options.no_screen_outliers {
        return mean;
    }
    let screen = MR_SCREEN * mean;
    r_mean(ranges.iter().copied().filter(|r| *r < screen))
}

/// Absolute differences of neighbours where both are present (and not NaN).
fn abs_steps(values: &[Option<f64>]) -> Vec<f64> {
    values
        .windows(2)
        .filter_map(|w| Some((w[1]? - w[0]?).abs()))
        .filter(|r| !r.is_nan())
        .collect()
}

/// p, p′, u and u′ charts.
fn rates(
    kind: ChartKind,
    y: &[Option<f64>],
    den: &[Option<f64>],
    base: usize,
    options: &XmrOptions,
) -> GroupChart {
    let proportion = matches!(kind, ChartKind::P | ChartKind::PPrime);
    // A period without a numerator, or with no (or zero) denominator, is missing: it adds
    // nothing to the centre line and has no limits.
    let stat: Vec<Option<f64>> = y
        .iter()
        .zip(den)
        .map(|(v, d)| match (v, d) {
            (Some(v), Some(d)) if *d > 0.0 => Some(v / d),
            _ => None,
        })
        .collect();
    let counted = || (0..base).filter(|&i| stat[i].is_some());
    let (_, events) = compensated_sum(counted().filter_map(|i| y[i]));
    let (_, trials) = compensated_sum(counted().filter_map(|i| den[i]));
    let centre = events / trials;
    let sigma: Vec<f64> = stat
        .iter()
        .zip(den)
        .map(|(s, d)| match (s, d) {
            (Some(_), Some(d)) if proportion => (centre * (1.0 - centre) / d).sqrt(),
            (Some(_), Some(d)) => (centre / d).sqrt(),
            _ => f64::NAN,
        })
        .collect();
    let sigma_z = if matches!(kind, ChartKind::PPrime | ChartKind::UPrime) {
        // z-scores of the baseline; a zero σ (p̄ of 0 or 1) gives NaN, which drops out.
        let z: Vec<Option<f64>> = (0..base)
            .map(|i| stat[i].map(|v| (v - centre) / sigma[i]))
            .collect();
        screened_mean(&abs_steps(&z), options) / D2
    } else {
        1.0
    };
    let lines = stat
        .iter()
        .zip(&sigma)
        .map(|(s, sigma)| {
            if s.is_none() {
                return Lines {
                    centre,
                    ..Lines::NONE
                };
            }
            let lines = Lines::around(centre, sigma * sigma_z).floor_at_zero();
            let lines = if proportion {
                lines.cap_at_one()
            } else {
                lines
            };
            lines.finite()
        })
        .collect();
    GroupChart {
        runs: runs(&stat, centre),
        stat,
        lines,
    }
}

/// c chart: Poisson counts around their mean.
fn counts(y: &[Option<f64>], base: usize) -> GroupChart {
    let centre = r_mean(y[..base].iter().flatten().copied());
    let lines = Lines::around(centre, centre.sqrt()).floor_at_zero();
    GroupChart {
        stat: y.to_vec(),
        lines: vec![lines; y.len()],
        runs: runs(y, centre),
    }
}

/// g chart: limits from the geometric mean ḡ, the centre line drawn at the median (the
/// distribution is skewed, so about half the points fall either side of the median, not of
/// the mean), and the runs judged around that median, as qicharts2 draws it.
fn between_events(y: &[Option<f64>], base: usize) -> GroupChart {
    let mean = r_mean(y[..base].iter().flatten().copied());
    let median = r_median(y[..base].iter().flatten().copied());
    let lines = Lines {
        centre: median,
        ..Lines::around(mean, (mean * (mean + 1.0)).sqrt()).floor_at_zero()
    };
    GroupChart {
        stat: y.to_vec(),
        lines: vec![lines; y.len()],
        runs: runs(y, median),
    }
}

/// t chart: an I chart of the times to the 1/3.6 (σ = screened MR̄ / 1.128), its lines raised
/// back to the 3.6. A lower limit below zero there has no real back-transform and is drawn
/// at zero; the lower two-sigma line is then left out, as qicharts2 leaves it.
fn times(y: &[Option<f64>], base: usize, options: &XmrOptions) -> GroupChart {
    let power = 1.0 / T_POWER;
    let ty: Vec<Option<f64>> = y.iter().map(|v| v.map(|v| v.powf(power))).collect();
    let mean = r_mean(ty[..base].iter().flatten().copied());
    // Moving ranges of the deviations from the mean, as qicharts2 takes them.
    let deviations: Vec<Option<f64>> = ty[..base].iter().map(|v| v.map(|v| v - mean)).collect();
    let sigma = screened_mean(&abs_steps(&deviations), options) / D2;
    let t = Lines::around(mean, sigma);
    let back = |x: f64| x.powf(T_POWER);
    let lcl = back(t.lcl);
    let lines = Lines {
        centre: back(t.centre),
        lcl: if lcl.is_nan() || lcl < 0.0 { 0.0 } else { lcl },
        ucl: back(t.ucl),
        lower: back(t.lower),
        upper: back(t.upper),
    }
    .finite();
    // Runs compare the back-transformed values with the back-transformed centre.
    let round_trip: Vec<Option<f64>> = ty.iter().map(|v| v.map(back)).collect();
    GroupChart {
        runs: runs(&round_trip, lines.centre),
        stat: y.to_vec(),
        lines: vec![lines; y.len()],
    }
}

/// mR chart: each point's moving range against their mean. Neighbouring ranges share a
/// value, so runs are not independent: the run analysis is shown but never signals, as in
/// qicharts2.
fn moving_ranges(y: &[Option<f64>], base: usize) -> GroupChart {
    let stat: Vec<Option<f64>> = std::iter::once(None)
        .chain(y.windows(2).map(|w| Some((w[1]? - w[0]?).abs())))
        .collect();
    let centre = r_mean(stat[..base].iter().flatten().copied());
    let lines = Lines {
        centre,
        lcl: 0.0,
        ucl: MR_UPPER * centre,
        lower: 0.0,
        upper: (MR_UPPER / 3.0) * 2.0 * centre,
    };
    let mut runs = runs(&stat, centre);
    runs.signal = false;
    GroupChart {
        lines: vec![lines; y.len()],
        stat,
        runs,
    }
}

/// Run chart: the median, no limits.
fn medians(y: &[Option<f64>], base: usize) -> GroupChart {
    let centre = r_median(y[..base].iter().flatten().copied());
    GroupChart {
        stat: y.to_vec(),
        lines: vec![
            Lines {
                centre,
                ..Lines::NONE
            };
            y.len()
        ],
        runs: runs(y, centre),
    }
}

#[cfg(test)]
#[path = "attribute_tests.rs"]
mod tests;
