//! The special-cause rules, shared by every chart type.
//!
//! A chart supplies, per point, its centre line, process limits and "close to limit" lines
//! (a [`Band`]; constant within an XmR group, varying with the denominator on p and u
//! charts). [`Flags::of`] compares each value with its band; [`classify`] finds the runs
//! (trend, shift, two of three close to a limit) and labels each point by priority:
//! outside the limits, trend, two-in-three, shift. A missing value breaks every run.

use super::xmr::{Rules, SpecialCause};

/// Where a point's lines are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Band {
    pub centre: f64,
    pub lcl: f64,
    pub ucl: f64,
    pub near_lcl: f64,
    pub near_ucl: f64,
}

/// Per-point comparisons with the band; `None` when the value or the line is missing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flags {
    /// Strictly beyond a process limit.
    pub outside: Vec<Option<bool>>,
    /// Sign of value − centre (0 exactly on it).
    pub relative: Vec<Option<i8>>,
    /// Beyond a close-to-limit line but not beyond the limit.
    pub close: Vec<Option<bool>>,
}

impl Flags {
    /// Compares each value with `band(i)`.
    pub fn of(y: &[Option<f64>], band: impl Fn(usize) -> Band) -> Self {
        let n = y.len();
        let (mut outside, mut relative, mut close) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (i, v) in y.iter().enumerate() {
            let b = band(i);
            let limits_known = !b.lcl.is_nan() && !b.ucl.is_nan();
            let out = v.filter(|_| limits_known).map(|v| v > b.ucl || v < b.lcl);
            outside.push(out);
            relative.push(v.filter(|_| !b.centre.is_nan()).map(|v| {
                if v > b.centre {
                    1
                } else if v < b.centre {
                    -1
                } else {
                    0
                }
            }));
            close.push(match (v, out) {
                (Some(v), Some(out)) => Some(!out && (*v < b.near_lcl || *v > b.near_ucl)),
                _ => None,
            });
        }
        Flags {
            outside,
            relative,
            close,
        }
    }
}

/// The label of every point, after priority.
pub(crate) fn classify(y: &[Option<f64>], flags: &Flags, rules: &Rules) -> Vec<SpecialCause> {
    let n = y.len();
    let trend = part_of(&trend_ends(y, rules.trend_points), rules.trend_points);
    let shift = part_of(
        &shift_ends(&flags.relative, rules.shift_points),
        rules.shift_points,
    );
    let two_in_three = if rules.two_in_three {
        two_in_three(&flags.close, &flags.relative)
    } else {
        vec![false; n]
    };
    (0..n)
        .map(|i| {
            let above = flags.relative[i] == Some(1);
            if flags.outside[i] == Some(true) {
                if above {
                    SpecialCause::AboveUcl
                } else {
                    SpecialCause::BelowLcl
                }
            } else if trend[i] {
                // Labelled by the step to the next trend point, else the step from the
                // previous one; a flat step counts as decreasing, as in the reference.
                let step = match (
                    i + 1 < n && trend[i + 1],
                    y[i],
                    y.get(i + 1),
                    i.checked_sub(1),
                ) {
                    (true, Some(v), Some(Some(next)), _) => next - v,
                    (_, Some(v), _, Some(p)) => y[p].map_or(0.0, |prev| v - prev),
                    _ => 0.0,
                };
                if step > 0.0 {
                    SpecialCause::TrendIncreasing
                } else {
                    SpecialCause::TrendDecreasing
                }
            } else if two_in_three[i] {
                if flags.relative[i].is_some_and(|r| r > 0) {
                    SpecialCause::TwoInThreeAbove
                } else {
                    SpecialCause::TwoInThreeBelow
                }
            } else if shift[i] {
                if above {
                    SpecialCause::ShiftAbove
                } else {
                    SpecialCause::ShiftBelow
                }
            } else {
                SpecialCause::CommonCause
            }
        })
        .collect()
}

/// Row `i` ends a trend when the `len − 1` steps into it are all strictly up or all strictly
/// down; a missing value in the window breaks it.
fn trend_ends(y: &[Option<f64>], len: usize) -> Vec<bool> {
    let mut ends = vec![false; y.len()];
    for (i, end) in ends.iter_mut().enumerate().skip(len - 1) {
        let window = &y[i + 1 - len..=i];
        let steps: Option<Vec<f64>> = window.windows(2).map(|w| Some(w[1]? - w[0]?)).collect();
        if let Some(steps) = steps {
            *end = steps.iter().all(|s| *s > 0.0) || steps.iter().all(|s| *s < 0.0);
        }
    }
    ends
}

/// Row `i` ends a shift when it and the `len − 1` rows before it are all strictly on the same
/// side of the mean; a missing value or a point on the mean breaks it.
fn shift_ends(relative: &[Option<i8>], len: usize) -> Vec<bool> {
    let mut ends = vec![false; relative.len()];
    for (i, end) in ends.iter_mut().enumerate().skip(len - 1) {
        let window = &relative[i + 1 - len..=i];
        *end = match window[0] {
            Some(side) if side != 0 => window.iter().all(|r| *r == Some(side)),
            _ => false,
        };
    }
    ends
}

/// A row is part of a run when it, or one of the `len − 1` rows after it, ends one.
fn part_of(ends: &[bool], len: usize) -> Vec<bool> {
    (0..ends.len())
        .map(|i| ends[i..ends.len().min(i + len)].iter().any(|e| *e))
        .collect()
}

/// A row is marked when it is close to a limit and belongs to a window of three rows in which
/// at least two are close and all three lie strictly on one side of the mean.
fn two_in_three(close: &[Option<bool>], relative: &[Option<i8>]) -> Vec<bool> {
    let n = close.len();
    let mut in_firing = vec![false; n];
    for j in 0..n.saturating_sub(2) {
        let closes: Option<Vec<bool>> = close[j..j + 3].iter().copied().collect();
        let sides: Option<Vec<i8>> = relative[j..j + 3].iter().copied().collect();
        if let (Some(closes), Some(sides)) = (closes, sides) {
            let side_sum: i8 = sides.iter().sum();
            if closes.iter().filter(|c| **c).count() >= 2 && side_sum.abs() == 3 {
                in_firing[j..j + 3].iter_mut().for_each(|f| *f = true);
            }
        }
    }
    in_firing
        .iter()
        .zip(close)
        .map(|(firing, close)| *firing && *close == Some(true))
        .collect()
}
