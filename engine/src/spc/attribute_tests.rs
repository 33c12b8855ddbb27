//! Textbook worked examples (Montgomery, "Introduction to Statistical Quality Control": the
//! orange juice can p chart, the printed circuit board c chart, the personal computer u
//! chart) and hand-worked cases for the charts without a standard published example.

use super::*;
use crate::spc::xmr::{Rules, SpecialCause as S};

fn some(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().copied().map(Some).collect()
}

fn chart(kind: ChartKind, values: &[f64], den: Option<&[f64]>) -> ControlChart {
    let den = den.map(some);
    control_chart(
        kind,
        &some(values),
        den.as_deref(),
        &vec![false; values.len()],
        &XmrOptions::default(),
    )
    .unwrap()
}

fn near(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
}

fn outside(c: &ControlChart) -> Vec<usize> {
    c.points
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.special_cause, S::AboveUcl | S::BelowLcl))
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn p_chart_orange_juice_cans() {
    // Montgomery, Example 7.1: 30 samples of 50 cans, 347 nonconforming. p̄ = 0.2313,
    // UCL = 0.4102, LCL = 0.0524; samples 15 and 23 are above the upper limit.
    let defective = [
        12.0, 15.0, 8.0, 10.0, 4.0, 7.0, 16.0, 9.0, 14.0, 10.0, 5.0, 6.0, 17.0, 12.0, 22.0, 8.0,
        10.0, 5.0, 13.0, 11.0, 20.0, 18.0, 24.0, 15.0, 9.0, 12.0, 7.0, 13.0, 9.0, 6.0,
    ];
    let c = chart(ChartKind::P, &defective, Some(&[50.0; 30]));
    near(c.points[0].centre, 0.2313, 5e-5);
    near(c.points[0].ucl, 0.4102, 5e-5);
    near(c.points[0].lcl, 0.0524, 5e-5);
    near(c.points[14].value.unwrap(), 0.44, 1e-12);
    assert_eq!(outside(&c), [15, 23]);
}

#[test]
fn c_chart_printed_circuit_boards() {
    // Montgomery, Example 7.3: nonconformities in 26 samples of 100 boards. c̄ = 516/26 =
    // 19.85, UCL = 33.22, LCL = 6.48; sample 6 is below and sample 20 above the limits.
    let counts = [
        21.0, 24.0, 16.0, 12.0, 15.0, 5.0, 28.0, 20.0, 31.0, 25.0, 20.0, 24.0, 16.0, 19.0, 10.0,
        17.0, 13.0, 22.0, 18.0, 39.0, 30.0, 24.0, 16.0, 19.0, 17.0, 15.0,
    ];
    let c = chart(ChartKind::C, &counts, None);
    near(c.points[0].centre, 19.85, 0.005);
    near(c.points[0].ucl, 33.22, 0.01);
    near(c.points[0].lcl, 6.48, 0.005);
    assert_eq!(outside(&c), [6, 20]);
}

#[test]
fn u_chart_personal_computers() {
    // Montgomery, Example 7.5: nonconformities in 20 samples of 5 computers, 193 in all.
    // ū = 1.93, UCL = 3.79, LCL = 0.07; the process is in control.
    let counts = [
        10.0, 12.0, 8.0, 14.0, 10.0, 16.0, 11.0, 7.0, 10.0, 15.0, 9.0, 5.0, 7.0, 11.0, 12.0, 6.0,
        8.0, 10.0, 7.0, 5.0,
    ];
    let c = chart(ChartKind::U, &counts, Some(&[5.0; 20]));
    near(c.points[0].centre, 1.93, 1e-12);
    near(c.points[0].ucl, 3.79, 0.005);
    near(c.points[0].lcl, 0.07, 0.005);
    assert!(outside(&c).is_empty());
}

#[test]
fn p_chart_limits_follow_each_denominator() {
    // 5 of 50 and 10 of 200: p̄ = 15/250 = 0.06. σ₁ = √(0.06 × 0.94 / 50) = 0.033586,
    // limits 0 (floored) and 0.160758; σ₂ = √(0.0564 / 200) = 0.016793, limits 0.009621
    // and 0.110379.
    let c = chart(ChartKind::P, &[5.0, 10.0], Some(&[50.0, 200.0]));
    near(c.points[0].centre, 0.06, 1e-12);
    assert_eq!(c.points[0].lcl, 0.0);
    near(
        c.points[0].ucl,
        0.06 + 3.0 * (0.0564f64 / 50.0).sqrt(),
        1e-12,
    );
    near(c.points[0].ucl, 0.160758, 1e-6);
    near(c.points[1].lcl, 0.009621, 1e-6);
    near(c.points[1].ucl, 0.110379, 1e-6);
}

#[test]
fn laney_p_prime_widens_overdispersed_limits() {
    // 10, 30, 10, 30 of 100 each: p̄ = 0.2, σ = √(0.16/100) = 0.04. The p chart's limits
    // 0.08 and 0.32 would put nothing outside here, but z-scores −2.5, 2.5, −2.5, 2.5 have
    // moving ranges of 5: σ_z = 5 / 1.128 = 4.4326, so p′ limits are 0.2 ± 3 × 0.04 × 4.4326
    // = 0 (floored) and 0.7319.
    let p = chart(ChartKind::P, &[10.0, 30.0, 10.0, 30.0], Some(&[100.0; 4]));
    near(p.points[0].ucl, 0.32, 1e-12);
    near(p.points[0].lcl, 0.08, 1e-12);
    let pp = chart(
        ChartKind::PPrime,
        &[10.0, 30.0, 10.0, 30.0],
        Some(&[100.0; 4]),
    );
    near(pp.points[0].ucl, 0.2 + 3.0 * 0.04 * 5.0 / 1.128, 1e-12);
    near(pp.points[0].ucl, 0.7319, 5e-5);
    assert_eq!(pp.points[0].lcl, 0.0);
}

#[test]
fn laney_u_prime_on_huge_denominators() {
    // Rates with exposures so large that Poisson limits are razor thin: every point would be
    // outside a u chart, while u′ judges them against their real period-to-period spread.
    let counts = [
        100_000.0, 110_000.0, 95_000.0, 105_000.0, 102_000.0, 98_000.0,
    ];
    let exposure = [1.0e8; 6];
    let u = chart(ChartKind::U, &counts, Some(&exposure));
    assert_eq!(outside(&u).len(), 5);
    let up = chart(ChartKind::UPrime, &counts, Some(&exposure));
    assert!(outside(&up).is_empty());
    // ū = 610000 / 6e8; σ = √(ū / 1e8); the counts' steps of 10000, 15000, 10000, 3000 and
    // 4000 are the rates' moving ranges times 1e8, so σ_z = mean(step / 1e8 / σ) / 1.128.
    let ubar = 610_000.0 / 6.0e8;
    let sigma = (ubar / 1.0e8f64).sqrt();
    let mr_z = [10_000.0, 15_000.0, 10_000.0, 3_000.0, 4_000.0].map(|d| d / 1.0e8 / sigma);
    let sigma_z = mr_z.iter().sum::<f64>() / 5.0 / 1.128;
    near(up.points[0].ucl, ubar + 3.0 * sigma * sigma_z, 1e-12);
}

#[test]
fn g_chart_cases_between_events() {
    // ḡ = 4, σ = √(4 × 5) = 4.4721: limits 0 (floored) and 4 + 13.4164 = 17.4164.
    let c = chart(ChartKind::G, &[2.0, 4.0, 6.0], None);
    near(c.points[0].centre, 4.0, 1e-12);
    near(c.points[0].ucl, 4.0 + 3.0 * 20f64.sqrt(), 1e-12);
    assert_eq!(c.points[0].lcl, 0.0);
}

#[test]
fn t_chart_is_an_i_chart_of_transformed_times() {
    // Times 1, 2^3.6, 3^3.6 are 1, 2, 3 after the 1/3.6 power: mean 2, moving ranges 1 and 1
    // (neither screened: both below 3.267), σ = 1 / 1.128. Limits there 2 ± 3σ: the lower
    // (−0.6596) has no back-transform and is drawn at 0, the upper is 4.6596^3.6; the
    // two-sigma lines are 2 ± 2σ = 0.2270 and 3.7730, raised to the 3.6.
    let times = [1.0, 2f64.powf(3.6), 3f64.powf(3.6)];
    let c = chart(ChartKind::T, &times, None);
    let sigma: f64 = 1.0 / 1.128;
    let p = &c.points[0];
    near(p.centre, 2f64.powf(3.6), 1e-9);
    near(p.ucl, (2.0 + 3.0 * sigma).powf(3.6), 1e-9);
    near(p.ucl, 254.71, 0.01);
    assert_eq!(p.lcl, 0.0);
    near(p.lower_two_sigma, (2.0 - 2.0 * sigma).powf(3.6), 1e-12);
    near(p.upper_two_sigma, (2.0 + 2.0 * sigma).powf(3.6), 1e-9);
    assert_eq!(c.kind.centre_line(), CentreLine::BackTransformedMean);
    assert_eq!(
        c.points[1].value,
        Some(times[1]),
        "values are shown untransformed"
    );
    // Wide spread: 1, 2 and 3 again but far apart, 1 and 10^3.6: the lower two-sigma line
    // falls below zero there too, and is left out (no real back-transform), while the
    // lower limit is drawn at 0.
    let c = chart(ChartKind::T, &[1.0, 10f64.powf(3.6)], None);
    assert_eq!(c.points[0].lcl, 0.0);
    assert!(c.points[0].lower_two_sigma.is_nan());
    // Times must be above zero, as qicharts2 requires.
    for bad in [-2.0, 0.0] {
        let err = control_chart(
            ChartKind::T,
            &[Some(1.0), Some(bad)],
            None,
            &[false, false],
            &XmrOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, SpcError::OutOfRange { index: 1, .. }),
            "{err}"
        );
    }
}

#[test]
fn mr_chart_lines_and_its_runs_never_signal() {
    // Values 1, 3, 2, 6: ranges none, 2, 1, 4. MR̄ = 7/3; lower limit 0, upper 3.267 × 7/3 =
    // 7.623; two-sigma lines 0 and (3.267 / 3) × 2 × 7/3 = 5.082.
    let c = chart(ChartKind::Mr, &[1.0, 3.0, 2.0, 6.0], None);
    assert_eq!(c.points[0].value, None);
    assert_eq!(c.points[3].value, Some(4.0));
    let p = &c.points[0];
    near(p.centre, 7.0 / 3.0, 1e-12);
    near(p.ucl, 3.267 * 7.0 / 3.0, 1e-12);
    near(p.upper_two_sigma, 5.082, 1e-12);
    assert_eq!((p.lcl, p.lower_two_sigma), (0.0, 0.0));
    // A jump beyond the upper limit is flagged.
    let c = chart(
        ChartKind::Mr,
        &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 20.0],
        None,
    );
    assert_eq!(c.points[7].special_cause, S::AboveUcl);
    assert!(c.points[7].outside_limits);
    // Ranges 1 ×8 then 5, 5: MR̄ = 1.8, eight below then two above. Ten useful points, a run
    // of 8 against a limit of 6 — a signal on any other chart, never on an mR chart.
    let c = chart(
        ChartKind::Mr,
        &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 13.0, 18.0],
        None,
    );
    let runs = c.groups[0].runs;
    assert_eq!((runs.useful, runs.longest_run), (10, Some(8)));
    assert_eq!(runs.longest_run_limit, Some(6));
    assert!(!runs.signal);
}

#[test]
fn p_chart_lines_and_runs_by_hand() {
    // 2, 4, 6, 8 of 20: p̄ = 20/80 = 0.25, σ = √(0.25 × 0.75 / 20) = 0.0968246. Limits
    // 0.25 ± 0.2904738: 0 (floored) and 0.5404738; two-sigma lines 0.0563508 and 0.4436492.
    // Proportions 0.1 0.2 0.3 0.4 sit − − + +: 4 useful points, longest run 2 (limit
    // round(log2 4 + 3) = 5), 1 crossing (limit qbinom(0.05, 3, ½) = 0): no signal.
    let c = chart(ChartKind::P, &[2.0, 4.0, 6.0, 8.0], Some(&[20.0; 4]));
    let sigma = (0.25f64 * 0.75 / 20.0).sqrt();
    let p = &c.points[0];
    near(p.centre, 0.25, 1e-15);
    assert_eq!(p.lcl, 0.0);
    near(p.ucl, 0.5404738, 1e-7);
    near(p.ucl, 0.25 + 3.0 * sigma, 1e-15);
    near(p.lower_two_sigma, 0.0563508, 1e-7);
    near(p.upper_two_sigma, 0.4436492, 1e-7);
    assert!(c.points.iter().all(|p| !p.outside_limits));
    let runs = c.groups[0].runs;
    assert_eq!(runs.useful, 4);
    assert_eq!(
        (runs.longest_run, runs.longest_run_limit),
        (Some(2), Some(5))
    );
    assert_eq!((runs.crossings, runs.crossings_limit), (Some(1), Some(0)));
    assert!(!runs.signal);
    assert_eq!(c.kind.centre_line(), CentreLine::Pooled);
}

#[test]
fn a_zero_denominator_and_a_missing_value_are_gaps_with_no_lines() {
    // 3/10, 1/0, –/10, 4/10: the second and third periods are missing. They add nothing to
    // p̄ = 7/20 = 0.35 (σ = √(0.35 × 0.65 / 10) = 0.1508310) and have no limits; the others
    // have 0.35 ± 0.4524931: 0 and 0.8024931. Runs: 0.3 below, 0.4 above: 2 useful points.
    let c = control_chart(
        ChartKind::P,
        &[Some(3.0), Some(1.0), None, Some(4.0)],
        Some(&[Some(10.0), Some(0.0), Some(10.0), Some(10.0)]),
        &[false; 4],
        &XmrOptions::default(),
    )
    .unwrap();
    near(c.points[0].centre, 0.35, 1e-15);
    near(c.points[0].ucl, 0.8024931, 1e-7);
    assert_eq!(c.points[0].lcl, 0.0);
    for gap in &c.points[1..3] {
        assert_eq!(gap.value, None);
        near(gap.centre, 0.35, 1e-15);
        assert!(gap.lcl.is_nan() && gap.ucl.is_nan() && gap.upper_two_sigma.is_nan());
        assert!(!gap.outside_limits);
    }
    let runs = c.groups[0].runs;
    assert_eq!((runs.useful, runs.crossings), (2, Some(1)));
    // A missing count on a c chart is a gap too: the mean of 4 and 8 is 6.
    let c = control_chart(
        ChartKind::C,
        &[Some(4.0), None, Some(8.0)],
        None,
        &[false; 3],
        &XmrOptions::default(),
    )
    .unwrap();
    near(c.points[1].centre, 6.0, 1e-15);
    assert_eq!(c.points[1].value, None);
    assert_eq!(c.groups[0].runs.useful, 2);
}

#[test]
fn a_p_bar_of_zero_has_limits_on_the_centre_line_and_nothing_useful() {
    // No events at all: p̄ = 0, σ = 0, every line is 0 and no point is outside. Every point
    // sits on the centre line, so none is useful for the run analysis. p′ divides by σ = 0
    // for its z-scores, so it has no limits at all.
    let c = chart(ChartKind::P, &[0.0; 3], Some(&[10.0; 3]));
    let p = &c.points[0];
    assert_eq!(
        (p.centre, p.lcl, p.ucl, p.lower_two_sigma, p.upper_two_sigma),
        (0.0, 0.0, 0.0, 0.0, 0.0)
    );
    assert!(c.points.iter().all(|p| !p.outside_limits));
    let runs = c.groups[0].runs;
    assert_eq!(runs.useful, 0);
    assert_eq!(
        (runs.longest_run, runs.crossings, runs.signal),
        (None, None, false)
    );
    let c = chart(ChartKind::PPrime, &[0.0; 3], Some(&[10.0; 3]));
    assert_eq!(c.points[0].centre, 0.0);
    assert!(c.points[0].ucl.is_nan() && c.points[0].lcl.is_nan());
}

#[test]
fn rebase_groups_have_their_own_lines_and_runs() {
    // 1, 2 of 10, then (rebased) 8, 9 of 10: p̄ 0.15 then 0.85, each group with its own
    // runs: −+ in each, one crossing apiece.
    let mut rebase = [false; 4];
    rebase[2] = true;
    let den = some(&[10.0; 4]);
    let c = control_chart(
        ChartKind::P,
        &some(&[1.0, 2.0, 8.0, 9.0]),
        Some(&den),
        &rebase,
        &XmrOptions::default(),
    )
    .unwrap();
    near(c.points[0].centre, 0.15, 1e-15);
    near(c.points[2].centre, 0.85, 1e-15);
    // σ = √(0.85 × 0.15 / 10) = 0.1129159: the upper limit 1.1887 is capped at 1.
    assert_eq!(c.points[2].ucl, 1.0);
    near(c.points[2].lcl, 0.85 - 3.0 * 0.1129159, 1e-7);
    assert_eq!(
        c.groups
            .iter()
            .map(|g| (g.rebase_group, g.start, g.rows, g.runs.crossings))
            .collect::<Vec<_>>(),
        [(0, 0, 2, Some(1)), (1, 2, 2, Some(1))]
    );
}

#[test]
fn a_fixed_baseline_sets_the_lines_and_the_runs_cover_every_point() {
    // Counts 2, 4, 6, 20, 22 with the first 3 as baseline: c̄ = 4, σ = 2: limits 0 (from
    // −2) and 10, two-sigma lines 0 and 8. 20 and 22 are outside. Runs over all five
    // around 4: − (4 set aside) + + +: 4 useful, longest 3, 1 crossing.
    let options = XmrOptions {
        fix_after_n_points: Some(3),
        ..XmrOptions::default()
    };
    let c = control_chart(
        ChartKind::C,
        &some(&[2.0, 4.0, 6.0, 20.0, 22.0]),
        None,
        &[false; 5],
        &options,
    )
    .unwrap();
    let p = &c.points[4];
    assert_eq!(
        (p.centre, p.lcl, p.ucl, p.lower_two_sigma, p.upper_two_sigma),
        (4.0, 0.0, 10.0, 0.0, 8.0)
    );
    assert_eq!(
        c.points
            .iter()
            .map(|p| p.outside_limits)
            .collect::<Vec<_>>(),
        [false, false, false, true, true]
    );
    let g = &c.groups[0];
    assert_eq!((g.baseline_rows, g.runs.useful), (3, 4));
    assert_eq!((g.runs.longest_run, g.runs.crossings), (Some(3), Some(1)));
    // Only the XmR chart asks for 12 baseline points.
    let err = control_chart(
        ChartKind::Xmr,
        &some(&[2.0, 4.0, 6.0, 20.0, 22.0]),
        None,
        &[false; 5],
        &options,
    )
    .unwrap_err();
    assert_eq!(err, SpcError::FixAfterTooSmall { n: 3, min: 12 });
}

#[test]
fn u_prime_screens_the_moving_ranges_of_its_z_scores() {
    // Rates 0.10 0.12 0.10 0.12 0.10 0.40 per 100: ū = 94/600, σ = √(ū/100). The z-scores'
    // moving ranges are the rates' steps over σ: 0.02 ×4 and 0.30, mean 0.076/σ. Screened at
    // 3.267 × that (0.248/σ), the 0.30 step goes: MR̄ = 0.02/σ, σ_z = 0.02/σ/1.128, and the
    // limits are ū ± 3σσ_z = ū ± 0.06/1.128 = 0.1034752 and 0.2098582. Unscreened they
    // would be ū ± 0.228/1.128.
    let counts = [10.0, 12.0, 10.0, 12.0, 10.0, 40.0];
    let c = chart(ChartKind::UPrime, &counts, Some(&[100.0; 6]));
    let ubar = 94.0 / 600.0;
    near(c.points[0].centre, ubar, 1e-15);
    near(c.points[0].ucl, ubar + 0.06 / 1.128, 1e-12);
    near(c.points[0].lcl, 0.1034752, 1e-7);
    near(c.points[0].upper_two_sigma, ubar + 0.04 / 1.128, 1e-12);
    assert_eq!(
        c.points
            .iter()
            .map(|p| p.outside_limits)
            .collect::<Vec<_>>(),
        [true, false, true, false, true, true]
    );
    let options = XmrOptions {
        no_screen_outliers: true,
        ..XmrOptions::default()
    };
    let den = some(&[100.0; 6]);
    let c = control_chart(
        ChartKind::UPrime,
        &some(&counts),
        Some(&den),
        &[false; 6],
        &options,
    )
    .unwrap();
    near(c.points[0].ucl, ubar + 0.228 / 1.128, 1e-12);
}

#[test]
fn g_chart_draws_the_median_and_takes_its_limits_from_the_mean() {
    // 0, 1, 2, 3, 14 cases between events: mean 4, σ = √(4 × 5) = 4.4721; limits 0 (from
    // −9.4) and 17.4164, two-sigma lines 0 and 12.9443. The centre line is the median, 2,
    // and the runs are judged around it: − − (2 set aside) + +.
    let c = chart(ChartKind::G, &[0.0, 1.0, 2.0, 3.0, 14.0], None);
    let p = &c.points[0];
    assert_eq!(p.centre, 2.0);
    near(p.ucl, 4.0 + 3.0 * 20f64.sqrt(), 1e-12);
    near(p.upper_two_sigma, 4.0 + 2.0 * 20f64.sqrt(), 1e-12);
    assert_eq!((p.lcl, p.lower_two_sigma), (0.0, 0.0));
    assert!(c.points.iter().all(|p| !p.outside_limits));
    let runs = c.groups[0].runs;
    assert_eq!(
        (runs.useful, runs.longest_run, runs.crossings),
        (4, Some(2), Some(1))
    );
    assert_eq!(c.kind.centre_line(), CentreLine::Median);
}

#[test]
fn run_charts_exactly_at_the_limits_and_one_past_them() {
    // Ten useful points: a run longer than 6 or fewer than 2 crossings signals. Values 1
    // below, 9 above, and enough 5s that the median is 5 and they are set aside.
    let run = |sides: &str, on_median: usize| {
        let mut v: Vec<Option<f64>> = sides
            .chars()
            .map(|c| Some(if c == '+' { 9.0 } else { 1.0 }))
            .collect();
        v.extend(std::iter::repeat_n(Some(5.0), on_median));
        let c = control_chart(
            ChartKind::Run,
            &v,
            None,
            &vec![false; v.len()],
            &XmrOptions::default(),
        )
        .unwrap();
        assert_eq!(c.points[0].centre, 5.0, "{sides}");
        assert!(c.points[0].ucl.is_nan() && c.points[0].lower_two_sigma.is_nan());
        c.groups[0].runs
    };
    // ++ −−−−−− ++: a run of 6 (the limit) and 2 crossings (the limit): no signal.
    let at = run("++------++", 3);
    assert_eq!(at.useful, 10);
    assert_eq!((at.longest_run, at.longest_run_limit), (Some(6), Some(6)));
    assert_eq!((at.crossings, at.crossings_limit), (Some(2), Some(2)));
    assert!(!at.signal);
    // + −−−−−−− ++: a run of 7, one past the limit.
    let long = run("+-------++", 5);
    assert_eq!(
        (long.useful, long.longest_run, long.crossings),
        (10, Some(7), Some(2))
    );
    assert!(long.signal);
    // −−−−− +++++: a run of 5 but 1 crossing, one short of the limit.
    let few = run("-----+++++", 1);
    assert_eq!(
        (few.useful, few.longest_run, few.crossings),
        (10, Some(5), Some(1))
    );
    assert!(few.signal);
}

#[test]
fn xmr_through_the_same_door_gains_two_sigma_lines_and_runs() {
    // Making Data Count's limits are unchanged; its two-sigma lines are the close-to-limit
    // lines, mean ± 2 × (2.66 / 3) × MR̄. 10, 12, 14, 12: mean 12, MR̄ 2.
    let c = chart(ChartKind::Xmr, &[10.0, 12.0, 14.0, 12.0], None);
    let p = &c.points[0];
    assert_eq!(p.centre, 12.0);
    near(p.ucl, 12.0 + 2.66 * 2.0, 1e-12);
    near(p.upper_two_sigma, 12.0 + 2.0 * (2.66 / 3.0) * 2.0, 1e-12);
    near(p.lower_two_sigma, 12.0 - 2.0 * (2.66 / 3.0) * 2.0, 1e-12);
    let runs = c.groups[0].runs;
    assert_eq!((runs.useful, runs.crossings), (2, Some(1)));
}

#[test]
fn attribute_charts_apply_the_making_data_count_rules() {
    // Seven rising proportions inside wide limits: a trend; and the rule length is
    // configurable per KPI.
    let events = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0];
    let c = chart(ChartKind::P, &events, Some(&[100.0; 7]));
    assert!(
        c.points
            .iter()
            .all(|p| p.special_cause == S::TrendIncreasing)
    );
    assert_eq!(c.variation_icon, Some(VariationIcon::ImprovementHigh));
    let options = XmrOptions {
        rules: Rules {
            trend_points: 8,
            ..Rules::default()
        },
        improvement: Improvement::Decrease,
        target: Some(0.05),
        ..XmrOptions::default()
    };
    let den = some(&[100.0; 7]);
    let c = control_chart(
        ChartKind::P,
        &some(&events),
        Some(&den),
        &[false; 7],
        &options,
    )
    .unwrap();
    assert!(
        c.points
            .iter()
            .all(|p| p.special_cause != S::TrendIncreasing)
    );
    // p̄ = 0.13, σ = 0.03363: limits 0.0291 and 0.2309; a target of 0.05 lies inside.
    assert_eq!(c.assurance_icon, Some(AssuranceIcon::Inconsistent));
}

#[test]
fn missing_denominators_and_bad_inputs_are_refused_or_kept_as_gaps() {
    let err = control_chart(
        ChartKind::P,
        &[Some(1.0)],
        None,
        &[false],
        &XmrOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err, SpcError::MissingDenominator { chart: "p" });
    // A zero denominator makes that point missing, not an error.
    let c = chart(ChartKind::P, &[1.0, 2.0, 3.0], Some(&[10.0, 0.0, 10.0]));
    assert_eq!(c.points[1].value, None);
    near(c.points[0].centre, 4.0 / 20.0, 1e-12);
    assert_eq!("pp".parse::<ChartKind>(), Ok(ChartKind::PPrime));
    assert!("xbar".parse::<ChartKind>().is_err());
}

#[test]
fn rebase_groups_have_their_own_centre_lines() {
    let counts = [10.0, 12.0, 11.0, 30.0, 28.0, 32.0];
    let mut rebase = [false; 6];
    rebase[3] = true;
    let c = control_chart(
        ChartKind::C,
        &some(&counts),
        None,
        &rebase,
        &XmrOptions::default(),
    )
    .unwrap();
    near(c.points[0].centre, 11.0, 1e-12);
    near(c.points[3].centre, 30.0, 1e-12);
    assert_eq!(c.points[3].rebase_group, 1);
}
