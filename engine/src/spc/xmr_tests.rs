//! Hand-worked cases for every rule, priority, direction, icon and edge case of
//! `docs/mdc-spc.md` (the reference's behaviour). Expected limits were worked out with exact
//! fractions: mean, moving ranges, screening at 3.267 × the first mean moving range, limits
//! at mean ± 2.66 × mean moving range, close-to-limit lines at mean ± 2 × (2.66 / 3) × it.

use super::*;

fn some(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().copied().map(Some).collect()
}

fn chart(values: &[Option<f64>], options: &XmrOptions) -> XmrChart {
    xmr(values, &vec![false; values.len()], options).unwrap()
}

fn causes(c: &XmrChart) -> Vec<SpecialCause> {
    c.points.iter().map(|p| p.special_cause).collect()
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-12,
        "{actual} differs from {expected}"
    );
}

fn increase() -> XmrOptions {
    XmrOptions::default()
}

fn with_direction(improvement: Improvement) -> XmrOptions {
    XmrOptions {
        improvement,
        ..XmrOptions::default()
    }
}

use SpecialCause as S;

// ---------------------------------------------------------------------------------------
// Limits

/// Nine moving ranges: eight of 1 and one of 40. First mean 48/9 = 5.333…; the screen
/// 3.267 × 5.333… = 17.424 removes the 40, leaving a mean moving range of 1. The mean is
/// 144/10 = 14.4, so the limits are 14.4 ± 2.66 = 11.74 and 17.06.
const SCREENED: [f64; 10] = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 50.0];

#[test]
fn limits_use_the_screened_mean_moving_range() {
    let c = chart(&some(&SCREENED), &increase());
    let seg = &c.segments[0];
    assert_close(seg.mean, 14.4);
    assert_close(seg.mean_moving_range, 1.0);
    assert_close(seg.lpl, 11.74);
    assert_close(seg.upl, 17.06);
    // Every 10 and 11 lies below 11.74; 50 lies above 17.06.
    let mut expected = vec![S::BelowLcl; 9];
    expected.push(S::AboveUcl);
    assert_eq!(causes(&c), expected);
    assert_eq!(c.points[0].point_type, PointType::SpecialCauseConcern);
    assert_eq!(c.points[9].point_type, PointType::SpecialCauseImprovement);
    assert_eq!(c.variation_icon, Some(VariationIcon::ImprovementHigh));
}

#[test]
fn without_screening_the_first_mean_moving_range_sets_the_limits() {
    let options = XmrOptions {
        no_screen_outliers: true,
        ..increase()
    };
    let c = chart(&some(&SCREENED), &options);
    let seg = &c.segments[0];
    // 14.4 ± 2.66 × 48/9 = 0.21333… and 28.58666…; close lines 14.4 ± 9.45777….
    assert_close(seg.mean_moving_range, 48.0 / 9.0);
    assert_close(seg.lpl, 14.4 - 2.66 * 48.0 / 9.0);
    assert_close(seg.upl, 14.4 + 2.66 * 48.0 / 9.0);
    // Nine points below the mean in a row: a shift; 50 is above the upper limit.
    let mut expected = vec![S::ShiftBelow; 9];
    expected.push(S::AboveUcl);
    assert_eq!(causes(&c), expected);
}

#[test]
fn screening_keeps_only_ranges_below_the_screen() {
    let c = chart(
        &some(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 9.0]),
        &increase(),
    );
    // Ranges 1 ×6 and 9: first mean 15/7; screen 7.0; 9 ≥ 7 is dropped; mean range 1.
    assert_close(c.segments[0].mean_moving_range, 1.0);
    let c = chart(
        &some(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 6.0]),
        &increase(),
    );
    // Ranges 1 ×6 and 6: first mean 12/7; screen 5.6; 6 is dropped.
    assert_close(c.segments[0].mean_moving_range, 1.0);
    let c = chart(
        &some(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 5.0]),
        &increase(),
    );
    // Ranges 1 ×6 and 5: first mean 11/7; screen 5.134…; 5 is kept.
    assert_close(c.segments[0].mean_moving_range, 11.0 / 7.0);
}

#[test]
fn a_constant_series_has_no_limits_when_screened_and_flat_limits_when_not() {
    let flat = some(&[5.0; 15]);
    let c = chart(&flat, &increase());
    let seg = &c.segments[0];
    assert_close(seg.mean, 5.0);
    // Every range is 0 and 0 < 3.267 × 0 is false: all screened out, limits NaN.
    assert!(seg.lpl.is_nan() && seg.upl.is_nan());
    assert!(c.points.iter().all(|p| p.special_cause == S::CommonCause));
    assert!(c.points.iter().all(|p| p.outside_limits.is_none()));
    assert_eq!(c.points[0].relative_to_mean, Some(0));

    let unscreened = XmrOptions {
        no_screen_outliers: true,
        ..increase()
    };
    let c = chart(&flat, &unscreened);
    assert_close(c.segments[0].lpl, 5.0);
    assert_close(c.segments[0].upl, 5.0);
    // On the limit is inside; on the mean is neither side.
    assert!(c.points.iter().all(|p| p.outside_limits == Some(false)));
    assert!(c.points.iter().all(|p| p.close_to_limits == Some(false)));
    assert!(c.points.iter().all(|p| p.special_cause == S::CommonCause));
}

#[test]
fn one_point_has_no_limits_and_two_points_do() {
    let c = chart(&some(&[3.0]), &increase());
    assert!(c.segments[0].lpl.is_nan());
    assert_eq!(c.points[0].special_cause, S::CommonCause);
    assert!(c.points[0].short_group_warning);
    assert_eq!(c.variation_icon, Some(VariationIcon::CommonCause));

    // Mean 2, one range of 2 (kept: 2 < 6.534): limits 2 ± 5.32.
    let c = chart(&some(&[1.0, 3.0]), &increase());
    assert_close(c.segments[0].lpl, 2.0 - 5.32);
    assert_close(c.segments[0].upl, 2.0 + 5.32);
}

#[test]
fn an_empty_series_has_no_icons() {
    let c = chart(
        &[],
        &XmrOptions {
            target: Some(1.0),
            ..increase()
        },
    );
    assert!(c.points.is_empty() && c.segments.is_empty());
    assert_eq!(c.variation_icon, None);
    assert_eq!(c.assurance_icon, None);
}

// ---------------------------------------------------------------------------------------
// Trend

/// Mean 68/15, mean moving range 82/14: limits −11.05 and 20.11, close lines −5.85 and
/// 14.92, so nothing is near a limit; 1…7 is the only run.
const TREND: [f64; 15] = [
    0.0, 10.0, 0.0, 10.0, 0.0, 10.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 10.0,
];

#[test]
fn seven_rising_points_are_a_trend_and_take_the_direction_colour() {
    let c = chart(&some(&TREND), &increase());
    let mut expected = vec![S::CommonCause; 15];
    expected[6..13].fill(S::TrendIncreasing);
    assert_eq!(causes(&c), expected);
    assert_eq!(c.points[6].point_type, PointType::SpecialCauseImprovement);

    let c = chart(&some(&TREND), &with_direction(Improvement::Decrease));
    assert_eq!(c.points[6].point_type, PointType::SpecialCauseConcern);
    let c = chart(&some(&TREND), &with_direction(Improvement::Neutral));
    assert_eq!(c.points[6].point_type, PointType::SpecialCauseNeutralHigh);
}

#[test]
fn six_rising_points_are_not_a_trend_unless_the_rule_says_six() {
    // Replace the 7 with a 5.5: the run is 1…6 then a fall.
    let mut values = TREND;
    values[12] = 5.5;
    let c = chart(&some(&values), &increase());
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));

    let six = XmrOptions {
        rules: Rules {
            trend_points: 6,
            ..Rules::default()
        },
        ..increase()
    };
    let c = chart(&some(&values), &six);
    assert_eq!(
        causes(&c)[6..12],
        [S::TrendIncreasing; 6],
        "a six-point trend rule finds it"
    );
    assert_eq!(
        S::TrendIncreasing.label(&six.rules),
        "6 Point Trend (Increasing)"
    );
    assert_eq!(S::ShiftBelow.label(&Rules::default()), "7 Points Below CL");
}

#[test]
fn equal_neighbours_break_a_trend() {
    let mut values = TREND;
    values[9] = 3.0; // 1, 2, 3, 3, 5, 6, 7
    let c = chart(&some(&values), &increase());
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));
}

/// Six alternating points, then 1…7…1: an up trend and a down trend sharing the peak.
fn peak() -> Vec<f64> {
    let mut v = vec![0.0, 20.0, 0.0, 20.0, 0.0, 20.0];
    v.extend((1..=7).map(f64::from));
    v.extend((1..=6).rev().map(f64::from));
    v
}

#[test]
fn a_shared_peak_is_labelled_by_its_right_hand_step() {
    // Mean 109/19, mean moving range 131/18: limits −13.6 and 25.1; the 20s are close to the
    // upper limit but their windows mix sides, and no run reaches 7 on one side.
    let c = chart(&some(&peak()), &increase());
    let got = causes(&c);
    assert_eq!(got[..6], [S::CommonCause; 6]);
    assert_eq!(got[6..12], [S::TrendIncreasing; 6]);
    assert_eq!(
        got[12],
        S::TrendDecreasing,
        "the peak takes the next step, down"
    );
    assert_eq!(got[13..], [S::TrendDecreasing; 6]);
}

#[test]
fn a_flat_step_between_trends_labels_the_earlier_top_decreasing() {
    // 1…7, 7, 6…1: the up trend ends at the first 7; the second 7 starts the down trend.
    let mut v = vec![0.0, 20.0, 0.0, 20.0, 0.0, 20.0];
    v.extend((1..=7).map(f64::from));
    v.extend((1..=7).rev().map(f64::from));
    let c = chart(&some(&v), &increase());
    let got = causes(&c);
    assert_eq!(got[6..12], [S::TrendIncreasing; 6]);
    // The quirk: the next row is a trend row and the step to it is 0, so "Decreasing".
    assert_eq!(got[12], S::TrendDecreasing);
    assert_eq!(got[13..], [S::TrendDecreasing; 7]);
}

#[test]
fn a_missing_value_breaks_a_trend_where_the_reference_would_stop() {
    // NHSRplotthedots 0.2.2 can fail with an R error on this window; bright treats the gap as
    // a break, so the rising points are common cause.
    let mut values = some(&TREND);
    values[9] = None;
    let c = chart(&values, &increase());
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));
    assert_eq!(c.points[9].value, None);
    assert_eq!(c.points[9].outside_limits, None);
}

// ---------------------------------------------------------------------------------------
// Two in three

/// Sixteen points alternating 10/12, then 16, 12, 16 and 6, 10, 6 (the mean stays 11).
/// Moving ranges: 15 of 2, then 4, 4, 4, 10, 4, 4; first mean 60/21; the screen 9.33 drops
/// the 10; mean moving range 50/20 = 2.5. Limits 4.35 and 17.65, close lines 6.5667 and
/// 15.4333: the 16s and 6s are close to a limit, 12 and 10 are not.
fn two_in_three_series(middle_high: f64, middle_low: f64) -> Vec<f64> {
    let mut v: Vec<f64> = (0..16)
        .map(|i| if i % 2 == 0 { 10.0 } else { 12.0 })
        .collect();
    v.extend([16.0, middle_high, 16.0, 6.0, middle_low, 6.0]);
    v
}

#[test]
fn two_of_three_close_to_a_limit_on_one_side_marks_the_close_ones() {
    let c = chart(&some(&two_in_three_series(12.0, 10.0)), &increase());
    assert_close(c.segments[0].mean, 11.0);
    assert_close(c.segments[0].mean_moving_range, 2.5);
    let got = causes(&c);
    assert_eq!(got[..16], [S::CommonCause; 16]);
    assert_eq!(
        got[16..],
        [
            S::TwoInThreeAbove,
            S::CommonCause, // in the window, on the same side, but not close itself
            S::TwoInThreeAbove,
            S::TwoInThreeBelow,
            S::CommonCause,
            S::TwoInThreeBelow,
        ]
    );
    // Lower is better here: low points are improvement and the last point sets the icon.
    let c = chart(
        &some(&two_in_three_series(12.0, 10.0)),
        &with_direction(Improvement::Decrease),
    );
    assert_eq!(c.points[16].point_type, PointType::SpecialCauseConcern);
    assert_eq!(c.points[21].point_type, PointType::SpecialCauseImprovement);
    assert_eq!(c.variation_icon, Some(VariationIcon::ImprovementLow));
}

#[test]
fn a_point_on_the_mean_stops_two_in_three() {
    // The middle points equal the mean (11): the windows do not lie on one side.
    // Limits 3.818 and 18.182, close lines 6.212 and 15.788: 16 and 6 are still close.
    let c = chart(&some(&two_in_three_series(11.0, 11.0)), &increase());
    assert_close(c.segments[0].mean_moving_range, 2.7);
    assert_eq!(c.points[16].close_to_limits, Some(true));
    assert_eq!(c.points[19].close_to_limits, Some(true));
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));
}

#[test]
fn a_point_beyond_the_limit_completes_a_window_but_is_labelled_outside() {
    // 16, 19, 16 and 6, 3, 6: mean moving range 2.3, limits 4.882 and 17.118. 19 and 3 are
    // beyond the limits (so not "close"), yet each completes its window of three.
    let c = chart(&some(&two_in_three_series(19.0, 3.0)), &increase());
    assert_close(c.segments[0].upl, 11.0 + 2.66 * 2.3);
    assert_eq!(
        causes(&c)[16..],
        [
            S::TwoInThreeAbove,
            S::AboveUcl,
            S::TwoInThreeAbove,
            S::TwoInThreeBelow,
            S::BelowLcl,
            S::TwoInThreeBelow,
        ]
    );
    assert_eq!(c.points[17].close_to_limits, Some(false));
}

#[test]
fn the_two_in_three_rule_can_be_switched_off() {
    let options = XmrOptions {
        rules: Rules {
            two_in_three: false,
            ..Rules::default()
        },
        ..increase()
    };
    let c = chart(&some(&two_in_three_series(12.0, 10.0)), &options);
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));
}

// ---------------------------------------------------------------------------------------
// Shift

/// 12, 8 four times, then seven 11s and seven 9s: mean 10, mean moving range 33/21, limits
/// 5.82 and 14.18, close lines 7.21 and 12.79 (nothing close).
fn shift_series() -> Vec<f64> {
    let mut v: Vec<f64> = [12.0, 8.0].repeat(4);
    v.extend([11.0; 7]);
    v.extend([9.0; 7]);
    v
}

#[test]
fn seven_points_on_one_side_are_a_shift() {
    let c = chart(&some(&shift_series()), &increase());
    assert_close(c.segments[0].mean, 10.0);
    let got = causes(&c);
    assert_eq!(got[..8], [S::CommonCause; 8]);
    assert_eq!(got[8..15], [S::ShiftAbove; 7]);
    assert_eq!(got[15..], [S::ShiftBelow; 7]);
    assert_eq!(c.variation_icon, Some(VariationIcon::ConcernLow));
    let c = chart(
        &some(&shift_series()),
        &with_direction(Improvement::Neutral),
    );
    assert_eq!(c.points[8].point_type, PointType::SpecialCauseNeutralHigh);
    assert_eq!(c.points[20].point_type, PointType::SpecialCauseNeutralLow);
    assert_eq!(c.variation_icon, Some(VariationIcon::NeutralLow));
}

#[test]
fn a_point_on_the_mean_breaks_a_shift() {
    // One 11 and one 9 become 10 (the mean is still 10): runs of 3, never 7.
    let mut v = shift_series();
    v[11] = 10.0;
    v[18] = 10.0;
    let c = chart(&some(&v), &increase());
    assert_close(c.segments[0].mean, 10.0);
    assert_eq!(c.points[11].relative_to_mean, Some(0));
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));
}

#[test]
fn a_missing_value_breaks_a_shift_and_keeps_its_row() {
    let mut v = some(&shift_series());
    v[11] = None;
    let c = chart(&v, &increase());
    assert_eq!(c.points.len(), 22);
    assert_eq!(c.points[11].point_type, PointType::CommonCause);
    assert_eq!(c.points[11].relative_to_mean, None);
    // Above: 3 then 3 around the gap, no shift; below: still seven 9s.
    let got = causes(&c);
    assert!(got[8..15].iter().all(|s| *s == S::CommonCause));
    assert_eq!(got[15..], [S::ShiftBelow; 7]);
    // The gap leaves the mean out of it and takes the two moving ranges next to it.
    let present: Vec<f64> = v.iter().flatten().copied().collect();
    assert_close(c.segments[0].mean, present.iter().sum::<f64>() / 21.0);
}

#[test]
fn a_nine_point_run_with_a_gap_after_the_fifth_is_not_a_signal() {
    let mut v: Vec<Option<f64>> = some(&[12.0, 8.0].repeat(4));
    v.extend([Some(11.0); 5]);
    v.push(None);
    v.extend([Some(11.0); 4]);
    v.extend(some(&[8.0, 12.0].repeat(2)));
    let c = chart(&v, &increase());
    assert!(
        causes(&c).iter().all(|s| *s == S::CommonCause),
        "{:?}",
        causes(&c)
    );
}

#[test]
fn a_point_beyond_a_limit_still_counts_in_its_neighbours_shift() {
    // 10/12 sixteen times, then 12, 12, 12, 25, 12, 12, 12: mean 273/23 = 11.87; moving
    // ranges 2 (×15), 0, 0, 0, 13, 13, 0, 0; the screen drops the 13s: mean range 1.5,
    // limits 7.88 and 15.86. From the last 12 of the prefix, eight points lie above the
    // mean; the 25 is labelled outside, the other seven are a shift.
    let mut v: Vec<f64> = [10.0, 12.0].repeat(8);
    v.extend([12.0, 12.0, 12.0, 25.0, 12.0, 12.0, 12.0]);
    let c = chart(&some(&v), &increase());
    assert_close(c.segments[0].mean_moving_range, 1.5);
    let got = causes(&c);
    assert_eq!(got[..15], [S::CommonCause; 15]);
    assert_eq!(got[15..19], [S::ShiftAbove; 4]);
    assert_eq!(got[19], S::AboveUcl);
    assert_eq!(got[20..], [S::ShiftAbove; 3]);
}

// ---------------------------------------------------------------------------------------
// Rebase, baseline, warnings

#[test]
fn each_rebase_group_is_its_own_process() {
    // Two flat-ish processes: 10/12 for 13 rows, then 20/24 for 13 rows.
    let mut v: Vec<f64> = (0..13)
        .map(|i| if i % 2 == 0 { 10.0 } else { 12.0 })
        .collect();
    v.extend((0..13).map(|i| if i % 2 == 0 { 20.0 } else { 24.0 }));
    let mut rebase = vec![false; 26];
    rebase[13] = true;
    let c = xmr(&some(&v), &rebase, &increase()).unwrap();
    assert_eq!(c.segments.len(), 2);
    // Group 0: mean 142/13, ranges all 2. Group 1: mean 284/13, ranges all 4 (the jump from
    // 12 to 20 across the rebase is not a moving range).
    assert_close(c.segments[0].mean, 142.0 / 13.0);
    assert_close(c.segments[0].mean_moving_range, 2.0);
    assert_close(c.segments[1].mean, 284.0 / 13.0);
    assert_close(c.segments[1].mean_moving_range, 4.0);
    assert_eq!(c.points[12].rebase_group, 0);
    assert_eq!(c.points[13].rebase_group, 1);
    assert!(causes(&c).iter().all(|s| *s == S::CommonCause));
    // Without the rebase the jump is a shift in one process.
    let c = chart(&some(&v), &increase());
    assert!(causes(&c).iter().any(|s| *s != S::CommonCause));
}

#[test]
fn runs_do_not_cross_a_rebase() {
    // Four points above the old mean and four above the new one would be eight in a row
    // without the rebase; with it, neither group has seven.
    let mut v: Vec<f64> = [8.0, 12.0].repeat(5);
    v.extend([11.0; 4]);
    v.extend([11.0; 4]);
    v.extend([8.0, 12.0].repeat(5));
    let mut rebase = vec![false; v.len()];
    rebase[14] = true;
    let c = xmr(&some(&v), &rebase, &increase()).unwrap();
    assert!(
        c.points[10..18]
            .iter()
            .all(|p| p.special_cause != S::ShiftAbove)
    );
}

#[test]
fn a_rebase_on_the_first_row_numbers_groups_from_one() {
    let mut rebase = vec![false; 20];
    rebase[0] = true;
    rebase[10] = true;
    let c = xmr(&some(&[1.0; 20]), &rebase, &increase()).unwrap();
    assert_eq!(c.points[0].rebase_group, 1);
    assert_eq!(c.points[19].rebase_group, 2);
    assert_eq!(c.segments.len(), 2);
}

#[test]
fn fix_after_n_points_sets_limits_from_each_groups_first_rows() {
    // Twelve points 10/12 then twelve at 30: with a baseline of 12 the limits come from the
    // first twelve only (mean 11, range 2: 5.68 and 16.32), and the 30s are outside.
    let mut v: Vec<f64> = [10.0, 12.0].repeat(6);
    v.extend([30.0; 12]);
    let fixed = XmrOptions {
        fix_after_n_points: Some(12),
        ..increase()
    };
    let c = chart(&some(&v), &fixed);
    assert_close(c.segments[0].mean, 11.0);
    assert_close(c.segments[0].lpl, 11.0 - 2.66 * 2.0);
    assert_eq!(c.segments[0].baseline_values, 12);
    assert!(
        c.points[12..]
            .iter()
            .all(|p| p.special_cause == S::AboveUcl)
    );
    // Counted again from the start of each rebase group.
    let mut rebase = vec![false; 24];
    rebase[12] = true;
    let v2: Vec<f64> = [[10.0, 12.0].repeat(6), [30.0, 34.0].repeat(6)].concat();
    let c = xmr(&some(&v2), &rebase, &fixed).unwrap();
    assert_close(c.segments[1].mean, 32.0);
    assert_close(c.segments[1].mean_moving_range, 4.0);
}

#[test]
fn a_missing_value_in_the_baseline_still_uses_up_a_place() {
    let mut v: Vec<Option<f64>> = some(&[10.0, 12.0].repeat(6));
    v[3] = None;
    v.extend(some(&[100.0; 3]));
    let fixed = XmrOptions {
        fix_after_n_points: Some(12),
        ..increase()
    };
    let c = chart(&v, &fixed);
    assert_eq!(c.segments[0].baseline_values, 11);
    // Mean of the eleven baseline values: (6 × 10 + 6 × 12 − 12) / 11 = 120 / 11.
    assert_close(c.segments[0].mean, 120.0 / 11.0);
}

#[test]
fn fix_after_fewer_than_twelve_points_is_refused() {
    let options = XmrOptions {
        fix_after_n_points: Some(11),
        ..increase()
    };
    let err = xmr(&some(&[1.0; 20]), &[false; 20], &options).unwrap_err();
    assert_eq!(err, SpcError::FixAfterTooSmall { n: 11, min: 12 });
}

#[test]
fn groups_of_twelve_rows_or_fewer_carry_the_short_group_warning() {
    let c = chart(&some(&[1.0, 2.0].repeat(6)), &increase());
    assert!(c.points.iter().all(|p| p.short_group_warning));
    assert!(c.segments[0].short_group_warning);
    let c = chart(
        &some(&[[1.0, 2.0].repeat(6), vec![1.0]].concat()),
        &increase(),
    );
    assert!(!c.segments[0].short_group_warning);
}

#[test]
fn non_finite_values_and_mismatched_marks_are_refused() {
    let err = xmr(&[Some(1.0), Some(f64::NAN)], &[false, false], &increase()).unwrap_err();
    assert_eq!(err, SpcError::NotFinite { index: 1 });
    let err = xmr(&[Some(1.0)], &[false, false], &increase()).unwrap_err();
    assert!(matches!(err, SpcError::LengthMismatch { .. }));
}

// ---------------------------------------------------------------------------------------
// Icons

fn with_target(improvement: Improvement, target: f64) -> XmrOptions {
    XmrOptions {
        improvement,
        target: Some(target),
        ..XmrOptions::default()
    }
}

#[test]
fn assurance_compares_the_target_with_the_last_groups_limits() {
    // The screened series: limits 11.74 and 17.06.
    let values = some(&SCREENED);
    let icon =
        |improvement, target| chart(&values, &with_target(improvement, target)).assurance_icon;
    assert_eq!(icon(Improvement::Increase, 20.0), Some(AssuranceIcon::Fail));
    assert_eq!(icon(Improvement::Decrease, 20.0), Some(AssuranceIcon::Pass));
    assert_eq!(icon(Improvement::Increase, 5.0), Some(AssuranceIcon::Pass));
    assert_eq!(icon(Improvement::Decrease, 5.0), Some(AssuranceIcon::Fail));
    assert_eq!(
        icon(Improvement::Increase, 15.0),
        Some(AssuranceIcon::Inconsistent)
    );
    // A target exactly on a limit is inconsistent.
    let upl = chart(&values, &increase()).segments[0].upl;
    assert_eq!(
        icon(Improvement::Increase, upl),
        Some(AssuranceIcon::Inconsistent)
    );
    // No assurance for a neutral direction or without a target.
    assert_eq!(icon(Improvement::Neutral, 20.0), None);
    assert_eq!(chart(&values, &increase()).assurance_icon, None);
    // Undefined limits make it inconsistent.
    let flat = chart(
        &some(&[5.0; 15]),
        &with_target(Improvement::Increase, 100.0),
    );
    assert_eq!(flat.assurance_icon, Some(AssuranceIcon::Inconsistent));
}

#[test]
fn assurance_uses_the_last_rebase_group() {
    let v: Vec<f64> = [[10.0, 12.0].repeat(7), [30.0, 34.0].repeat(7)].concat();
    let mut rebase = vec![false; 28];
    rebase[14] = true;
    // Last group: mean 32, range 4: limits 21.36 and 42.64. A target of 20 is below them.
    let c = xmr(
        &some(&v),
        &rebase,
        &with_target(Improvement::Increase, 20.0),
    )
    .unwrap();
    assert_eq!(c.assurance_icon, Some(AssuranceIcon::Pass));
}

#[test]
fn the_variation_icon_comes_from_the_latest_point_only() {
    // A shift below ends the series: concern for "increase", improvement for "decrease".
    let values = some(&shift_series());
    assert_eq!(
        chart(&values, &increase()).variation_icon,
        Some(VariationIcon::ConcernLow)
    );
    assert_eq!(
        chart(&values, &with_direction(Improvement::Decrease)).variation_icon,
        Some(VariationIcon::ImprovementLow)
    );
    // Ending high: improvement high for increase, concern high for decrease.
    let mut high: Vec<f64> = [12.0, 8.0].repeat(4);
    high.extend([11.0; 7]);
    assert_eq!(
        chart(&some(&high), &increase()).variation_icon,
        Some(VariationIcon::ImprovementHigh)
    );
    assert_eq!(
        chart(&some(&high), &with_direction(Improvement::Decrease)).variation_icon,
        Some(VariationIcon::ConcernHigh)
    );
    assert_eq!(
        chart(&some(&high), &with_direction(Improvement::Neutral)).variation_icon,
        Some(VariationIcon::NeutralHigh)
    );
    // A missing last value is common cause, whatever came before.
    let mut gap = some(&high);
    gap.push(None);
    assert_eq!(
        chart(&gap, &increase()).variation_icon,
        Some(VariationIcon::CommonCause)
    );
    // Each segment reports the type of its own last point.
    let c = chart(&some(&high), &increase());
    assert_eq!(c.segments[0].variation, PointType::SpecialCauseImprovement);
}
