//! Rebase suggestions: when the latest points form a sustained shift, propose the point where
//! the new process most likely began, with the limits it would give, for a person to accept.
//!
//! The proposal is the first point of the run (on one side of the current mean) that contains
//! the latest shift and reaches the latest value: a shift that has already ended is history,
//! not a new process. Nothing is rebased automatically; Making Data Count leaves that decision
//! to the people who know what changed.

use super::SpcError;
use super::xmr::{SpecialCause, XmrOptions, xmr};

/// A proposed rebase.
#[derive(Debug, Clone, PartialEq)]
pub struct RebaseSuggestion {
    /// Position of the first point of the proposed new process.
    pub index: usize,
    /// Points in the proposed new segment.
    pub points: usize,
    /// Side of the old mean the new process lies on (1 above, −1 below).
    pub side: i8,
    /// The new segment's mean.
    pub mean: f64,
    /// Its lower process limit.
    pub lpl: f64,
    /// Its upper process limit.
    pub upl: f64,
}

/// Proposes a rebase for `values` with the rebases already in `rebase`, or `None`.
pub fn suggest_rebase(
    values: &[Option<f64>],
    rebase: &[bool],
    options: &XmrOptions,
) -> Result<Option<RebaseSuggestion>, SpcError> {
    let chart = xmr(values, rebase, options)?;
    let Some(segment) = chart.segments.last() else {
        return Ok(None);
    };
    let points = &chart.points[segment.start..];
    let Some(latest_shift) = points.iter().rposition(|p| {
        matches!(
            p.special_cause,
            SpecialCause::ShiftAbove | SpecialCause::ShiftBelow
        )
    }) else {
        return Ok(None);
    };
    let Some(side) = points[latest_shift].relative_to_mean else {
        return Ok(None);
    };
    let on_side = |i: usize| points[i].relative_to_mean == Some(side);
    let start = (0..=latest_shift)
        .rev()
        .take_while(|&i| on_side(i))
        .last()
        .unwrap_or(latest_shift);
    let end = (latest_shift..points.len())
        .take_while(|&i| on_side(i))
        .last()
        .unwrap_or(latest_shift);
    let last_value = points.iter().rposition(|p| p.value.is_some());
    if start == 0 || Some(end) != last_value {
        return Ok(None);
    }
    let index = segment.start + start;
    let mut proposed = rebase.to_vec();
    proposed[index] = true;
    let after = xmr(values, &proposed, options)?;
    let Some(new) = after.segments.last() else {
        return Ok(None);
    };
    Ok(Some(RebaseSuggestion {
        index,
        points: new.rows,
        side,
        mean: new.mean,
        lpl: new.lpl,
        upl: new.upl,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn a_sustained_shift_proposes_its_first_point() {
        // 9, 11 eight times, then 13, 15 five times: the old mean is 300/26 = 11.54, so the
        // new level is a run of ten above it starting at position 16.
        let v = some(&[[9.0, 11.0].repeat(8), [13.0, 15.0].repeat(5)].concat());
        let s = suggest_rebase(&v, &[false; 26], &XmrOptions::default())
            .unwrap()
            .expect("a suggestion");
        assert_eq!((s.index, s.points, s.side), (16, 10, 1));
        // The new process: mean 14, ranges all 2: limits 14 ± 5.32.
        assert!((s.mean - 14.0).abs() < 1e-12);
        assert!((s.upl - 19.32).abs() < 1e-12);
        // Accepting it leaves nothing more to suggest.
        let mut rebase = [false; 26];
        rebase[16] = true;
        assert_eq!(
            suggest_rebase(&v, &rebase, &XmrOptions::default()).unwrap(),
            None
        );
    }

    #[test]
    fn a_shift_that_has_ended_or_random_variation_proposes_nothing() {
        // The raised level lasted ten points and the process came back to varying either side
        // of the mean (11.18 over the whole series).
        let v = some(
            &[
                [9.0, 11.0].repeat(8),
                [13.0, 15.0].repeat(5),
                [9.0, 13.0].repeat(4),
            ]
            .concat(),
        );
        assert_eq!(
            suggest_rebase(&v, &[false; 34], &XmrOptions::default()).unwrap(),
            None
        );
        let v = some(&[9.0, 11.0].repeat(12));
        assert_eq!(
            suggest_rebase(&v, &[false; 24], &XmrOptions::default()).unwrap(),
            None
        );
    }
}
