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
fn t_chart_works_on_transformed_times() {
    // Times 1, 2^3.6, 3^3.6 are 1, 2, 3 after the 1/3.6 power: mean 2, moving ranges 1, 1:
    // limits 2 ± 2.66 there, so 0 (from −0.66) and 4.66^3.6 back here; centre 2^3.6.
    let times = [1.0, 2f64.powf(3.6), 3f64.powf(3.6)];
    let c = chart(ChartKind::T, &times, None);
    near(c.points[0].centre, 2f64.powf(3.6), 1e-9);
    near(c.points[0].ucl, 4.66f64.powf(3.6), 1e-9);
    assert_eq!(c.points[0].lcl, 0.0);
    assert_eq!(
        c.points[1].value,
        Some(times[1]),
        "values are shown untransformed"
    );
    let err = control_chart(
        ChartKind::T,
        &[Some(1.0), Some(-2.0)],
        None,
        &[false, false],
        &XmrOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err, SpcError::Negative { index: 1 });
}

#[test]
fn mr_chart_has_only_an_upper_limit() {
    // Ranges of 1, 3, 2, 6: none, 2, 1, 4. MR̄ = 7/3, upper limit 3.267 × 7/3 = 7.623.
    let c = chart(ChartKind::Mr, &[1.0, 3.0, 2.0, 6.0], None);
    assert_eq!(c.points[0].value, None);
    assert_eq!(c.points[3].value, Some(4.0));
    near(c.points[0].centre, 7.0 / 3.0, 1e-12);
    near(c.points[0].ucl, 3.267 * 7.0 / 3.0, 1e-12);
    assert!(c.points[0].lcl.is_nan());
    // A jump beyond the upper limit is flagged.
    let c = chart(
        ChartKind::Mr,
        &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 20.0],
        None,
    );
    assert_eq!(c.points[7].special_cause, S::AboveUcl);
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
