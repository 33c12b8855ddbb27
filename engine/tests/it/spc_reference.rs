//! bright's charts against independent implementations (Python, written from the
//! reference's description, `spc_reference.py`) over real series: every trust's monthly A&E
//! four-hour performance and attendances from `data-samples/ae_attendances.csv` (NHS England,
//! 2016–19), under a rotation of options (directions, targets, rebases, baselines, screening,
//! rule lengths, missing months).

use std::collections::BTreeMap;
use std::process::Command;

use bright_engine::spc::attribute::{ChartKind, control_chart};
use bright_engine::spc::{Improvement, Rules, XmrOptions, xmr};
use serde_json::{Value, json};

use crate::moto::python;

struct Month {
    attendances: f64,
    breaches: f64,
}

fn read_ae() -> BTreeMap<(String, String), Vec<(String, Month)>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data-samples/ae_attendances.csv"
    );
    let text = std::fs::read_to_string(path).expect("ae_attendances.csv is in data-samples");
    let mut series: BTreeMap<(String, String), Vec<(String, Month)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        series
            .entry((f[1].to_string(), f[2].to_string()))
            .or_default()
            .push((
                f[0].to_string(),
                Month {
                    attendances: f[3].parse().unwrap(),
                    breaches: f[4].parse().unwrap(),
                },
            ));
    }
    for months in series.values_mut() {
        months.sort_by(|a, b| a.0.cmp(&b.0));
    }
    series
}

fn options_for(k: usize, performance: bool) -> XmrOptions {
    XmrOptions {
        improvement: [
            Improvement::Increase,
            Improvement::Decrease,
            Improvement::Neutral,
        ][k % 3],
        target: k
            .is_multiple_of(2)
            .then_some(if performance { 0.95 } else { 10_000.0 }),
        fix_after_n_points: (k % 5 == 2).then_some(12),
        no_screen_outliers: k % 7 == 3,
        rules: Rules {
            trend_points: if k % 11 == 5 { 6 } else { 7 },
            ..Rules::default()
        },
    }
}

fn opts_json(o: &XmrOptions) -> Value {
    json!({
        "improvement": o.improvement.as_str(),
        "target": o.target,
        "fix_after_n_points": o.fix_after_n_points,
        "no_screen_outliers": o.no_screen_outliers,
        "trend_points": o.rules.trend_points,
        "shift_points": o.rules.shift_points,
    })
}

fn nan_null(x: f64) -> Value {
    if x.is_nan() { Value::Null } else { json!(x) }
}

#[test]
fn bright_agrees_with_an_independent_implementation_on_real_ae_series() {
    let mut cases = Vec::new();
    let mut k: usize = 0;
    for ((org, kind), months) in read_ae() {
        if months.len() < 12 {
            continue;
        }
        for performance in [true, false] {
            k += 1;
            let mut values: Vec<Option<f64>> = months
                .iter()
                .map(|(_, m)| {
                    if performance {
                        (m.attendances > 0.0).then(|| 1.0 - m.breaches / m.attendances)
                    } else {
                        Some(m.attendances)
                    }
                })
                .collect();
            if k.is_multiple_of(6) {
                let gap = k % values.len();
                values[gap] = None;
            }
            let mut rebase = vec![false; values.len()];
            if k % 4 == 1 && values.len() > 18 {
                rebase[18] = true;
            }
            let options = options_for(k, performance);
            let chart = xmr(&values, &rebase, &options).unwrap();
            let points: Vec<Value> = chart
                .points
                .iter()
                .map(|p| {
                    json!({
                        "rebase_group": p.rebase_group,
                        "mean": nan_null(p.mean),
                        "lpl": nan_null(p.lpl),
                        "upl": nan_null(p.upl),
                        "special_cause_type": p.special_cause.as_str(),
                        "point_type": p.point_type.as_str(),
                        "short_group_warning": p.short_group_warning,
                    })
                })
                .collect();
            let what = if performance { "4h" } else { "attendances" };
            cases.push(json!({
                "name": format!("{org}/{kind}/{what}"),
                "values": values,
                "rebase": rebase,
                "options": opts_json(&options),
                "bright": {
                    "points": points,
                    "variation_icon": chart.variation_icon.map(|i| i.as_str()),
                    "assurance_icon": chart.assurance_icon.map(|i| i.as_str()),
                },
            }));
        }
    }
    assert!(cases.len() > 500, "{} series", cases.len());
    // The cases must exercise every rule, or agreement proves little.
    let all = serde_json::to_string(&cases).unwrap();
    for label in [
        "above_ucl",
        "below_lcl",
        "trend_increasing",
        "trend_decreasing",
        "two_in_three_above",
        "two_in_three_below",
        "shift_above",
        "shift_below",
        "special_cause_neutral_high",
        "\"fail\"",
        "\"pass\"",
        "inconsistent",
    ] {
        assert!(all.contains(label), "no case shows {label}");
    }
    check_with("spc_reference.py", &all);
}

/// Runs the independent implementation `script` over the cases (JSON); it fails at the first
/// disagreement, naming it.
fn check_with(script: &str, cases: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, cases).unwrap();
    let script = format!("{}/tests/it/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python())
        .args([&script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

/// One series of a trust for one chart type: (values or numerators, denominators).
fn chart_input(
    kind: ChartKind,
    months: &[(String, Month)],
) -> (Vec<Option<f64>>, Option<Vec<Option<f64>>>) {
    let of = |f: fn(&Month) -> Option<f64>| months.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
    match kind {
        // Patients seen within four hours over attendances (proportions near 1, so upper
        // limits are capped); breaches per attendance as a rate.
        ChartKind::P | ChartKind::PPrime => (
            of(|m| Some(m.attendances - m.breaches)),
            Some(of(|m| Some(m.attendances))),
        ),
        ChartKind::U | ChartKind::UPrime => {
            (of(|m| Some(m.breaches)), Some(of(|m| Some(m.attendances))))
        }
        ChartKind::C | ChartKind::G => (of(|m| Some(m.breaches)), None),
        // Attendances per breach: a positive "time between events".
        ChartKind::T => (
            of(|m| Some(m.attendances / m.breaches.max(1.0)).filter(|t| *t > 0.0)),
            None,
        ),
        ChartKind::Mr => (of(|m| Some(m.attendances)), None),
        ChartKind::Run | ChartKind::Xmr => (
            of(|m| (m.attendances > 0.0).then(|| 1.0 - m.breaches / m.attendances)),
            None,
        ),
    }
}

#[test]
fn every_other_chart_type_agrees_with_an_independent_implementation_on_real_ae_series() {
    // The XmR chart has its own check above.
    let kinds = ChartKind::ALL.into_iter().filter(|k| *k != ChartKind::Xmr);
    let mut cases = Vec::new();
    let mut k: usize = 0;
    for ((org, kind_of_ae), months) in read_ae() {
        if months.len() < 12 {
            continue;
        }
        for kind in kinds.clone() {
            k += 1;
            let (mut values, denominators) = chart_input(kind, &months);
            if k.is_multiple_of(6) {
                let gap = k % values.len();
                values[gap] = None;
            }
            let mut rebase = vec![false; values.len()];
            if k % 4 == 1 && values.len() > 18 {
                rebase[18] = true;
            }
            let options = XmrOptions {
                fix_after_n_points: [None, Some(6), None, Some(12), None][k % 5],
                no_screen_outliers: k % 7 == 3,
                ..XmrOptions::default()
            };
            let chart =
                control_chart(kind, &values, denominators.as_deref(), &rebase, &options).unwrap();
            let points: Vec<Value> = chart
                .points
                .iter()
                .map(|p| {
                    json!({
                        "value": p.value,
                        "mean": nan_null(p.centre),
                        "lpl": nan_null(p.lcl),
                        "upl": nan_null(p.ucl),
                        "lower_two_sigma": nan_null(p.lower_two_sigma),
                        "upper_two_sigma": nan_null(p.upper_two_sigma),
                        "outside_limits": p.outside_limits,
                    })
                })
                .collect();
            let groups: Vec<Value> = chart
                .groups
                .iter()
                .map(|g| {
                    json!({
                        "useful": g.runs.useful,
                        "longest_run": g.runs.longest_run,
                        "longest_run_limit": g.runs.longest_run_limit,
                        "crossings": g.runs.crossings,
                        "crossings_limit": g.runs.crossings_limit,
                        "signal": g.runs.signal,
                    })
                })
                .collect();
            cases.push(json!({
                "name": format!("{org}/{kind_of_ae}/{}", kind.as_str()),
                "chart": kind.as_str(),
                "values": values,
                "denominators": denominators,
                "rebase": rebase,
                "options": {
                    "fix_after_n_points": options.fix_after_n_points,
                    "no_screen_outliers": options.no_screen_outliers,
                },
                "bright": { "points": points, "groups": groups },
            }));
        }
    }
    assert!(cases.len() > 2000, "{} charts", cases.len());
    // The cases must reach the edges, or agreement proves little: limits clipped at 0 and
    // at 1, points outside, runs that signal and runs that do not, zero denominators.
    let all = serde_json::to_string(&cases).unwrap();
    for needle in [
        "\"lpl\":0.0",
        "\"upl\":1.0",
        "\"outside_limits\":true",
        "\"signal\":true",
        "\"signal\":false",
        "\"lower_two_sigma\":null",
    ] {
        assert!(all.contains(needle), "no case shows {needle}");
    }
    check_with("spc_charts_reference.py", &all);
}
