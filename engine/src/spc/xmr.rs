//! The Making Data Count XmR chart (NHSRplotthedots 0.2.2), point by point.
//!
//! Input: values in date order (`None` for a missing value, which keeps its row) and, per
//! row, whether it starts a new process (a rebase). Each rebase group is its own process with
//! its own mean, moving ranges, screening, baseline and rules; nothing crosses a rebase.
//!
//! Per group: the mean and mean moving range of the baseline (the first `fix_after_n_points`
//! rows, or all), moving ranges screened once at 3.267 × the first mean, process limits at
//! mean ± 2.66 × mean moving range and "close to limit" lines at mean ± 2 × (2.66 / 3) × mean
//! moving range. Rules, found independently and then ranked: outside the limits, a trend of
//! 7 points, 2 of 3 points close to a limit on one side, a shift of 7 points on one side.
//! The improvement direction turns a rule hit into improvement, concern or neutral; the last
//! point sets the variation icon, the last group's limits against the target the assurance
//! icon.
//!
//! One deliberate difference from the reference: when a 7-point trend window holds a missing
//! value, NHSRplotthedots 0.2.2 can stop with an R error; here the missing value breaks the
//! trend, as the package does whenever it does not fail.

use super::rules::{Band, Flags, classify};
use super::{SpcError, r_mean};

/// Process limits: mean ± 2.66 × mean moving range (3 / d2, d2 = 1.128, written as the
/// reference writes it).
pub const LIMIT: f64 = 2.66;
/// "Close to limits" lines: two thirds of the way to the limits, computed as the reference
/// computes them.
pub const LIMIT_CLOSE: f64 = 2.0 * (LIMIT / 3.0);
/// Moving ranges at or above this multiple of the mean moving range are screened out.
pub const MR_SCREEN: f64 = 3.267;
/// Groups with fewer rows than this carry a short-group (trial limits) warning.
pub const SHORT_GROUP: usize = 13;
/// Smallest baseline `fix_after_n_points` may ask for.
pub const MIN_FIX_AFTER: usize = 12;

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Improvement {
    /// Higher is better (the reference's default).
    #[default]
    Increase,
    /// Lower is better.
    Decrease,
    /// Neither: special causes are only high or low.
    Neutral,
}

impl Improvement {
    fn sign(self) -> i8 {
        match self {
            Improvement::Increase => 1,
            Improvement::Decrease => -1,
            Improvement::Neutral => 0,
        }
    }

    /// `increase`, `decrease` or `neutral`.
    pub fn as_str(self) -> &'static str {
        match self {
            Improvement::Increase => "increase",
            Improvement::Decrease => "decrease",
            Improvement::Neutral => "neutral",
        }
    }
}

impl std::str::FromStr for Improvement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "increase" => Ok(Improvement::Increase),
            "decrease" => Ok(Improvement::Decrease),
            "neutral" => Ok(Improvement::Neutral),
            other => Err(format!(
                "improvement direction must be increase, decrease or neutral, not '{other}'"
            )),
        }
    }
}

/// Run lengths of the rules. Making Data Count uses 7 for both; some trusts chart trends of 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Points in a row, each strictly higher (or lower) than the one before.
    pub trend_points: usize,
    /// Points in a row strictly on one side of the mean.
    pub shift_points: usize,
    /// Whether the 2-of-3-close-to-a-limit rule applies.
    pub two_in_three: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            trend_points: 7,
            shift_points: 7,
            two_in_three: true,
        }
    }
}

/// Settings of one chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XmrOptions {
    /// Which way is better.
    pub improvement: Improvement,
    /// A target for the assurance icon.
    pub target: Option<f64>,
    /// Compute each group's limits from its first N rows only (N ≥ 12).
    pub fix_after_n_points: Option<usize>,
    /// Skip screening of moving-range outliers (the reference screens by default).
    pub no_screen_outliers: bool,
    /// Rule lengths.
    pub rules: Rules,
}

/// Which rule, if any, labels a point (after priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialCause {
    CommonCause,
    AboveUcl,
    BelowLcl,
    TrendIncreasing,
    TrendDecreasing,
    TwoInThreeAbove,
    TwoInThreeBelow,
    ShiftAbove,
    ShiftBelow,
}

impl SpecialCause {
    /// The reference's label (`7 Point Trend (Increasing)`, `Above UCL`, …), with the run
    /// lengths of `rules`.
    pub fn label(self, rules: &Rules) -> String {
        let (trend, shift) = (rules.trend_points, rules.shift_points);
        match self {
            SpecialCause::CommonCause => "Common Cause".into(),
            SpecialCause::AboveUcl => "Above UCL".into(),
            SpecialCause::BelowLcl => "Below LCL".into(),
            SpecialCause::TrendIncreasing => format!("{trend} Point Trend (Increasing)"),
            SpecialCause::TrendDecreasing => format!("{trend} Point Trend (Decreasing)"),
            SpecialCause::TwoInThreeAbove => "2 in 3 Above CL".into(),
            SpecialCause::TwoInThreeBelow => "2 in 3 Below CL".into(),
            SpecialCause::ShiftAbove => format!("{shift} Points Above CL"),
            SpecialCause::ShiftBelow => format!("{shift} Points Below CL"),
        }
    }

    /// A snake_case name for machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialCause::CommonCause => "common_cause",
            SpecialCause::AboveUcl => "above_ucl",
            SpecialCause::BelowLcl => "below_lcl",
            SpecialCause::TrendIncreasing => "trend_increasing",
            SpecialCause::TrendDecreasing => "trend_decreasing",
            SpecialCause::TwoInThreeAbove => "two_in_three_above",
            SpecialCause::TwoInThreeBelow => "two_in_three_below",
            SpecialCause::ShiftAbove => "shift_above",
            SpecialCause::ShiftBelow => "shift_below",
        }
    }

    /// +1 for high or increasing, −1 for low or decreasing, 0 for common cause.
    pub fn sign(self) -> i8 {
        match self {
            SpecialCause::CommonCause => 0,
            SpecialCause::AboveUcl
            | SpecialCause::TrendIncreasing
            | SpecialCause::TwoInThreeAbove
            | SpecialCause::ShiftAbove => 1,
            _ => -1,
        }
    }
}

/// What a point means given the improvement direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointType {
    CommonCause,
    SpecialCauseImprovement,
    SpecialCauseConcern,
    SpecialCauseNeutralHigh,
    SpecialCauseNeutralLow,
}

impl PointType {
    /// The reference's name, e.g. `special_cause_improvement`.
    pub fn as_str(self) -> &'static str {
        match self {
            PointType::CommonCause => "common_cause",
            PointType::SpecialCauseImprovement => "special_cause_improvement",
            PointType::SpecialCauseConcern => "special_cause_concern",
            PointType::SpecialCauseNeutralHigh => "special_cause_neutral_high",
            PointType::SpecialCauseNeutralLow => "special_cause_neutral_low",
        }
    }

    /// The point type of a rule hit given the improvement direction.
    pub(crate) fn from_cause(cause: SpecialCause, improvement: Improvement) -> Self {
        let raw = cause.sign();
        match (raw, improvement) {
            (0, _) => PointType::CommonCause,
            (1, Improvement::Neutral) => PointType::SpecialCauseNeutralHigh,
            (_, Improvement::Neutral) => PointType::SpecialCauseNeutralLow,
            _ if raw * improvement.sign() > 0 => PointType::SpecialCauseImprovement,
            _ => PointType::SpecialCauseConcern,
        }
    }
}

/// The variation icon of a series (from its latest point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariationIcon {
    CommonCause,
    ImprovementHigh,
    ImprovementLow,
    ConcernHigh,
    ConcernLow,
    NeutralHigh,
    NeutralLow,
}

impl VariationIcon {
    /// e.g. `improvement_high`.
    pub fn as_str(self) -> &'static str {
        match self {
            VariationIcon::CommonCause => "common_cause",
            VariationIcon::ImprovementHigh => "improvement_high",
            VariationIcon::ImprovementLow => "improvement_low",
            VariationIcon::ConcernHigh => "concern_high",
            VariationIcon::ConcernLow => "concern_low",
            VariationIcon::NeutralHigh => "neutral_high",
            VariationIcon::NeutralLow => "neutral_low",
        }
    }

    /// The icon shown for a series whose latest point has `point_type`.
    pub(crate) fn from_point(point_type: PointType, improvement: Improvement) -> Self {
        match (point_type, improvement) {
            (PointType::CommonCause, _) => VariationIcon::CommonCause,
            (PointType::SpecialCauseImprovement, Improvement::Decrease) => {
                VariationIcon::ImprovementLow
            }
            (PointType::SpecialCauseImprovement, _) => VariationIcon::ImprovementHigh,
            (PointType::SpecialCauseConcern, Improvement::Decrease) => VariationIcon::ConcernHigh,
            (PointType::SpecialCauseConcern, _) => VariationIcon::ConcernLow,
            (PointType::SpecialCauseNeutralHigh, _) => VariationIcon::NeutralHigh,
            (PointType::SpecialCauseNeutralLow, _) => VariationIcon::NeutralLow,
        }
    }
}

/// Whether the process will meet its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssuranceIcon {
    /// The target lies outside the limits on the good side: it will be met consistently.
    Pass,
    /// The target lies outside the limits on the bad side: it will not be met without change.
    Fail,
    /// The target lies within the limits (or on one): sometimes met, sometimes not.
    Inconsistent,
}

impl AssuranceIcon {
    /// Where the target lies against the (latest) limits.
    pub(crate) fn from_limits(target: f64, lpl: f64, upl: f64, improvement: Improvement) -> Self {
        // NaN limits make both comparisons false: inconsistent, as in the reference.
        let increase = improvement == Improvement::Increase;
        if target > upl {
            if increase {
                AssuranceIcon::Fail
            } else {
                AssuranceIcon::Pass
            }
        } else if target < lpl {
            if increase {
                AssuranceIcon::Pass
            } else {
                AssuranceIcon::Fail
            }
        } else {
            AssuranceIcon::Inconsistent
        }
    }

    /// `pass`, `fail` or `inconsistent`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssuranceIcon::Pass => "pass",
            AssuranceIcon::Fail => "fail",
            AssuranceIcon::Inconsistent => "inconsistent",
        }
    }
}

/// One row of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The value, or `None` when missing.
    pub value: Option<f64>,
    /// Running count of rebases up to and including this row (the reference's numbering).
    pub rebase_group: u32,
    /// Centre line of the row's group (NaN when the group has no baseline value).
    pub mean: f64,
    /// Lower process limit (NaN when undefined).
    pub lpl: f64,
    /// Upper process limit (NaN when undefined).
    pub upl: f64,
    /// Beyond a process limit (strictly); `None` when the value or limits are missing.
    pub outside_limits: Option<bool>,
    /// Sign of value − mean: 1, −1, or 0 exactly on the mean; `None` when undefined.
    pub relative_to_mean: Option<i8>,
    /// Beyond a "close to limit" line but inside the limits; `None` when undefined.
    pub close_to_limits: Option<bool>,
    /// The rule that labels the point, after priority.
    pub special_cause: SpecialCause,
    /// Improvement, concern, neutral or common cause.
    pub point_type: PointType,
    /// The point's group has fewer than 13 rows (its limits are trial limits).
    pub short_group_warning: bool,
}

/// One rebase group (a process) of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The group's number, as on its points.
    pub rebase_group: u32,
    /// Position of its first row.
    pub start: usize,
    /// Rows in the group (missing values included).
    pub rows: usize,
    /// Values that set the limits (baseline rows with a value).
    pub baseline_values: usize,
    /// Centre line.
    pub mean: f64,
    /// Mean moving range after screening.
    pub mean_moving_range: f64,
    /// Lower process limit.
    pub lpl: f64,
    /// Upper process limit.
    pub upl: f64,
    /// Fewer than 13 rows.
    pub short_group_warning: bool,
    /// Point type of the group's last row.
    pub variation: PointType,
}

/// A computed XmR chart.
#[derive(Debug, Clone, PartialEq)]
pub struct XmrChart {
    /// One per input row, in input order.
    pub points: Vec<Point>,
    /// One per rebase group.
    pub segments: Vec<Segment>,
    /// From the latest point; `None` for an empty series.
    pub variation_icon: Option<VariationIcon>,
    /// Only with a target and a direction that is not neutral.
    pub assurance_icon: Option<AssuranceIcon>,
}

/// Every chart needs one rebase mark per value.
pub(super) fn check_lengths(values: &[Option<f64>], rebase: &[bool]) -> Result<(), SpcError> {
    if values.len() == rebase.len() {
        return Ok(());
    }
    Err(SpcError::LengthMismatch {
        values: values.len(),
        rebase: rebase.len(),
    })
}

/// Trends and shifts need at least two points to mean anything.
pub(super) fn check_rules(rules: &Rules) -> Result<(), SpcError> {
    for (rule, points) in [
        ("a trend", rules.trend_points),
        ("a shift", rules.shift_points),
    ] {
        if points < 2 {
            return Err(SpcError::RuleTooShort {
                rule,
                min: 2,
                points,
            });
        }
    }
    Ok(())
}

/// Computes the chart of `values` (in date order); `rebase[i]` marks row `i` as the first of
/// a new process.
pub fn xmr(
    values: &[Option<f64>],
    rebase: &[bool],
    options: &XmrOptions,
) -> Result<XmrChart, SpcError> {
    check_lengths(values, rebase)?;
    if let Some(n) = options.fix_after_n_points
        && n < MIN_FIX_AFTER
    {
        return Err(SpcError::FixAfterTooSmall {
            n,
            min: MIN_FIX_AFTER,
        });
    }
    if let Some(index) = values
        .iter()
        .position(|v| v.is_some_and(|v| !v.is_finite()))
    {
        return Err(SpcError::NotFinite { index });
    }
    check_rules(&options.rules)?;

    let mut points = Vec::with_capacity(values.len());
    let mut segments = Vec::new();
    let mut group = 0u32;
    let mut start = 0;
    while start < values.len() {
        group += u32::from(rebase[start]);
        let end = (start + 1..values.len())
            .find(|&i| rebase[i])
            .unwrap_or(values.len());
        segments.push(compute_group(
            &values[start..end],
            start,
            group,
            options,
            &mut points,
        ));
        start = end;
    }

    let last = points.last();
    let variation_icon = last.map(|p| VariationIcon::from_point(p.point_type, options.improvement));
    let assurance_icon = match (options.target, options.improvement, last) {
        (Some(target), improvement, Some(last)) if improvement != Improvement::Neutral => Some(
            AssuranceIcon::from_limits(target, last.lpl, last.upl, improvement),
        ),
        _ => None,
    };
    Ok(XmrChart {
        points,
        segments,
        variation_icon,
        assurance_icon,
    })
}

/// Limits, flags and rules of one rebase group; pushes its points and returns its summary.
fn compute_group(
    y: &[Option<f64>],
    start: usize,
    group: u32,
    options: &XmrOptions,
    out: &mut Vec<Point>,
) -> Segment {
    let n = y.len();
    let baseline_len = options.fix_after_n_points.unwrap_or(usize::MAX);
    // Values after the baseline count as missing for the limits (they use up places).
    let fix_y: Vec<Option<f64>> = y
        .iter()
        .enumerate()
        .map(|(i, v)| if i < baseline_len { *v } else { None })
        .collect();
    let mean = r_mean(fix_y.iter().flatten().copied());
    let mut mr: Vec<Option<f64>> = std::iter::once(None)
        .chain(fix_y.windows(2).map(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) => Some((b - a).abs()),
            _ => None,
        }))
        .collect();
    let mut amr = r_mean(mr.iter().flatten().copied());
    if !options.no_screen_outliers {
        // Kept only when strictly below the screen; a NaN screen keeps nothing.
        let screen = MR_SCREEN * amr;
        for m in &mut mr {
            *m = m.filter(|v| *v < screen);
        }
        amr = r_mean(mr.iter().flatten().copied());
    }
    let lpl = mean - LIMIT * amr;
    let upl = mean + LIMIT * amr;
    let near_lpl = mean - LIMIT_CLOSE * amr;
    let near_upl = mean + LIMIT_CLOSE * amr;

    let band = Band {
        centre: mean,
        lcl: lpl,
        ucl: upl,
        near_lcl: near_lpl,
        near_ucl: near_upl,
    };
    let flags = Flags::of(y, |_| band);
    let causes = classify(y, &flags, &options.rules);

    let short = n < SHORT_GROUP;
    for i in 0..n {
        let cause = causes[i];
        out.push(Point {
            value: y[i],
            rebase_group: group,
            mean,
            lpl,
            upl,
            outside_limits: flags.outside[i],
            relative_to_mean: flags.relative[i],
            close_to_limits: flags.close[i],
            special_cause: cause,
            point_type: PointType::from_cause(cause, options.improvement),
            short_group_warning: short,
        });
    }
    let variation = out.last().map_or(PointType::CommonCause, |p| p.point_type);
    Segment {
        rebase_group: group,
        start,
        rows: n,
        baseline_values: fix_y.iter().flatten().count(),
        mean,
        mean_moving_range: amr,
        lpl,
        upl,
        short_group_warning: short,
        variation,
    }
}

#[cfg(test)]
#[path = "xmr_tests.rs"]
mod tests;
