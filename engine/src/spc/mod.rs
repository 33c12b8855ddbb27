//! Statistical process control, computed as NHS "Making Data Count" reads it.
//!
//! - [`xmr`]: the Making Data Count XmR chart, matching the reference R package
//!   NHSRplotthedots 0.2.2 exactly (limits to 1e-12, the same rules, priorities, icons and
//!   edge cases; `docs/spc.md` lists where bright differs on purpose).
//! - [`attribute`]: every chart type (XmR, mR, p, p′, u, u′, c, g, t and run) as one
//!   [`attribute::ControlChart`]: limits and two-sigma lines as qicharts2 0.8.1 computes them,
//!   points judged by the Making Data Count rules ([`rules`] holds them once), and each
//!   process's run analysis by Anhøj's rules ([`run`]).
//! - [`narrate`]: plain-English sentences from a chart; [`suggest`]: rebase proposals;
//!   [`output`]: the chart as the Arrow batch the CLI prints and SQL returns.
//!
//! Everything here is a pure function over slices in time order: no I/O, no dates (callers
//! map dates to positions), cheap enough to run over every KPI and breakdown on each
//! dashboard tick.

pub mod attribute;
pub mod narrate;
pub mod output;
mod rules;
pub mod run;
pub mod suggest;
pub mod xmr;

pub use xmr::{
    AssuranceIcon, Improvement, Point, PointType, Rules, Segment, SpecialCause, VariationIcon,
    XmrChart, XmrOptions, xmr,
};

/// Errors from SPC calculations: bad options or values, never bad luck in the data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpcError {
    /// `fix_after_n_points` below the smallest baseline the chart accepts (12 for Making
    /// Data Count's XmR chart, 1 for the others).
    #[error("fix_after_n_points must be at least {min}, got {n}")]
    FixAfterTooSmall {
        /// What was asked for.
        n: usize,
        /// The smallest the chart accepts.
        min: usize,
    },
    /// A value that is not a finite number.
    #[error("value at position {index} is not a finite number")]
    NotFinite {
        /// Position in the series (0-based).
        index: usize,
    },
    /// Values and rebase marks of different lengths.
    #[error("{values} values but {rebase} rebase marks")]
    LengthMismatch {
        /// Number of values.
        values: usize,
        /// Number of rebase marks.
        rebase: usize,
    },
    /// A p or u chart without denominators.
    #[error("a {chart} chart needs a denominator for every point")]
    MissingDenominator {
        /// The chart type.
        chart: &'static str,
    },
    /// A value the chart cannot take: a time between events that is not above zero, a
    /// negative count, a proportion above one.
    #[error("value at position {index} {reason}")]
    OutOfRange {
        /// Position in the series (0-based).
        index: usize,
        /// What is wrong with it, completing the sentence.
        reason: &'static str,
    },
    /// A rule length too short to mean anything.
    #[error("{rule} needs at least {min} points, got {points}")]
    RuleTooShort {
        /// Which rule.
        rule: &'static str,
        /// Smallest allowed.
        min: usize,
        /// What was asked for.
        points: usize,
    },
}

impl SpcError {
    /// The position in the series the error is about, when it is about one value.
    pub fn index(&self) -> Option<usize> {
        match self {
            SpcError::NotFinite { index } | SpcError::OutOfRange { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// The arithmetic mean as R's `mean()` computes it: a first pass, then the mean residual added
/// back, both summed with compensation so the result matches R's extended-precision sums to
/// the last bits. NaN for no values.
pub(crate) fn r_mean(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (n, sum) = compensated_sum(values.clone());
    if n == 0 {
        return f64::NAN;
    }
    let first = sum / n as f64;
    if !first.is_finite() {
        return first;
    }
    // Each residual v − first is split into its rounded value and rounding error, so the
    // correction is exact even when v is far larger than the mean.
    let (_, residual) = compensated_sum(values.flat_map(|v| {
        let (d, e) = two_sum(v, -first);
        [d, e]
    }));
    first + residual / n as f64
}

/// `a + b` and the rounding error of that sum (Knuth's TwoSum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// The median as R's `median()` computes it (the mean of the middle two for an even count);
/// NaN for no values.
pub(crate) fn r_median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Neumaier's compensated sum, and how many values it saw.
pub(crate) fn compensated_sum(values: impl Iterator<Item = f64>) -> (usize, f64) {
    let (mut n, mut sum, mut carry) = (0usize, 0.0f64, 0.0f64);
    for v in values {
        n += 1;
        let t = sum + v;
        if sum.abs() >= v.abs() {
            carry += (sum - t) + v;
        } else {
            carry += (v - t) + sum;
        }
        sum = t;
    }
    (n, sum + carry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_nothing_is_nan_and_sums_are_compensated() {
        assert!(r_mean(std::iter::empty()).is_nan());
        assert_eq!(r_mean([1.0, 2.0, 4.0].into_iter()), 7.0 / 3.0);
        // Naive summation loses the small terms entirely.
        let values = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(r_mean(values.into_iter()), 0.5);
    }
}
