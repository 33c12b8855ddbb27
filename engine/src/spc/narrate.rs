//! Plain-English narration of an XmR chart, for board papers and the Integrated Performance
//! Report: one sentence on variation (from the latest point, as the variation icon is) and,
//! with a target, one on assurance. Every word comes from the computed chart; nothing is free
//! text.

use super::attribute::{ControlChart, ControlPoint};
use super::xmr::{AssuranceIcon, Point, PointType, SpecialCause, XmrChart};

/// How values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Proportions from 0 to 1, shown as percentages (0.741 → 74.1%).
    Percent,
    /// Counts (1234 → 1,234).
    Count,
    /// Durations in minutes.
    Minutes,
    /// Plain ratios (two decimals).
    Ratio,
    /// Money in pounds (1234567 → £1,234,567).
    Pounds,
}

impl Unit {
    /// Formats `x` for a sentence.
    pub fn format(self, x: f64) -> String {
        match self {
            Unit::Percent => {
                let text = format!("{:.1}", x * 100.0);
                format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
            }
            Unit::Count => group_thousands(x, if x.fract() == 0.0 { 0 } else { 1 }),
            Unit::Minutes => format!("{} minutes", group_thousands(x, 0)),
            Unit::Ratio => format!("{x:.2}"),
            Unit::Pounds => format!("£{}", group_thousands(x, 0)),
        }
        .replace("-", "−")
    }
}

impl std::str::FromStr for Unit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "%" | "percent" => Ok(Unit::Percent),
            "count" => Ok(Unit::Count),
            "minutes" => Ok(Unit::Minutes),
            "ratio" => Ok(Unit::Ratio),
            "£" | "pounds" => Ok(Unit::Pounds),
            other => Err(format!(
                "unknown unit '{other}' (%, count, minutes, ratio, £)"
            )),
        }
    }
}

fn group_thousands(x: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// What the narration needs besides the chart.
#[derive(Debug, Clone, Copy)]
pub struct Describe<'a> {
    /// The KPI's name as a board reads it, e.g. "Four-hour performance".
    pub title: &'a str,
    /// How its values are shown.
    pub unit: Unit,
    /// The KPI's period, plural ("months", "weeks", "days").
    pub periods: &'a str,
    /// The target, if any.
    pub target: Option<f64>,
}

fn number_word(n: usize) -> String {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_string())
}

/// One point of a chart of any kind (XmR or attribute): what the narration and the pages read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The plotted value, or `None` when missing.
    pub value: Option<f64>,
    /// Which process (rebase group) the point belongs to.
    pub rebase_group: u32,
    /// Centre line.
    pub mean: f64,
    /// Lower limit (NaN where there is none).
    pub lpl: f64,
    /// Upper limit (NaN where there is none).
    pub upl: f64,
    /// The rule that labels the point.
    pub special_cause: SpecialCause,
    /// Improvement, concern, neutral or common cause.
    pub point_type: PointType,
}

impl From<&Point> for Reading {
    fn from(p: &Point) -> Self {
        Reading {
            value: p.value,
            rebase_group: p.rebase_group,
            mean: p.mean,
            lpl: p.lpl,
            upl: p.upl,
            special_cause: p.special_cause,
            point_type: p.point_type,
        }
    }
}

impl From<&ControlPoint> for Reading {
    fn from(p: &ControlPoint) -> Self {
        Reading {
            value: p.value,
            rebase_group: p.rebase_group,
            mean: p.centre,
            lpl: p.lcl,
            upl: p.ucl,
            special_cause: p.special_cause,
            point_type: p.point_type,
        }
    }
}

/// One or two sentences about `chart`.
pub fn narrate(chart: &XmrChart, about: &Describe<'_>) -> String {
    let points: Vec<Reading> = chart.points.iter().map(Reading::from).collect();
    narrate_points(&points, chart.assurance_icon, about)
}

impl ControlChart {
    /// The chart in one or two sentences (see [`narrate_points`]).
    pub fn narrate(&self, about: &Describe<'_>) -> String {
        let points: Vec<Reading> = self.points.iter().map(Reading::from).collect();
        narrate_points(&points, self.assurance_icon, about)
    }
}

/// One or two sentences about a chart of any kind, from its points in time order and its
/// assurance icon.
pub fn narrate_points(
    points: &[Reading],
    assurance: Option<AssuranceIcon>,
    about: &Describe<'_>,
) -> String {
    let Some(last) = points.last() else {
        return format!("{} has no data yet.", about.title);
    };
    let unit = about.unit;
    let Some(value) = last.value else {
        return format!(
            "{} has no value for the latest period, so its variation cannot be judged.",
            about.title
        );
    };
    let kind = match last.point_type {
        PointType::CommonCause => "common cause variation",
        PointType::SpecialCauseImprovement => "special cause improvement",
        PointType::SpecialCauseConcern => "special cause concern",
        PointType::SpecialCauseNeutralHigh | PointType::SpecialCauseNeutralLow => {
            "special cause variation"
        }
    };
    let mean = unit.format(last.mean);
    // How many points, ending at the latest, share its label.
    let run = points
        .iter()
        .rev()
        .take_while(|p| p.special_cause == last.special_cause)
        .count();
    let detail = match last.special_cause {
        SpecialCause::CommonCause if last.lpl.is_nan() => format!(
            "the latest value is {}, and there are not yet enough points for process limits",
            unit.format(value)
        ),
        SpecialCause::CommonCause => format!(
            "the latest value, {}, lies within the process limits of {} to {} around a mean of {mean}",
            unit.format(value),
            unit.format(last.lpl),
            unit.format(last.upl)
        ),
        SpecialCause::AboveUcl => format!(
            "the latest value, {}, is above the upper process limit of {}",
            unit.format(value),
            unit.format(last.upl)
        ),
        SpecialCause::BelowLcl => format!(
            "the latest value, {}, is below the lower process limit of {}",
            unit.format(value),
            unit.format(last.lpl)
        ),
        SpecialCause::ShiftAbove | SpecialCause::ShiftBelow => format!(
            "the last {} points are {} the mean of {mean}",
            number_word(run),
            if last.special_cause == SpecialCause::ShiftAbove {
                "above"
            } else {
                "below"
            }
        ),
        SpecialCause::TrendIncreasing | SpecialCause::TrendDecreasing => format!(
            "the last {} points form a {} trend",
            number_word(run),
            if last.special_cause == SpecialCause::TrendIncreasing {
                "rising"
            } else {
                "falling"
            }
        ),
        SpecialCause::TwoInThreeAbove | SpecialCause::TwoInThreeBelow => format!(
            "two of the last three points are close to the {} process limit",
            if last.special_cause == SpecialCause::TwoInThreeAbove {
                "upper"
            } else {
                "lower"
            }
        ),
    };
    let mut text = format!("{} shows {kind}: {detail}.", about.title);
    if let (Some(target), Some(icon)) = (about.target, assurance) {
        let t = unit.format(target);
        let sentence = match icon {
            AssuranceIcon::Fail | AssuranceIcon::Pass => {
                let side = if target > last.upl {
                    "above the upper"
                } else {
                    "below the lower"
                };
                let consequence = if icon == AssuranceIcon::Fail {
                    "it will not be met without a change to the process"
                } else {
                    "the process will meet it consistently"
                };
                format!("The target of {t} lies {side} process limit, so {consequence}.")
            }
            AssuranceIcon::Inconsistent => format!(
                "The target of {t} lies within the process limits, so it will be met in some {} and missed in others.",
                about.periods
            ),
        };
        text.push(' ');
        text.push_str(&sentence);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spc::{Improvement, XmrOptions, xmr};

    fn describe(target: Option<f64>) -> Describe<'static> {
        Describe {
            title: "Four-hour performance",
            unit: Unit::Percent,
            periods: "months",
            target,
        }
    }

    #[test]
    fn a_shift_below_with_a_target_above_the_limits() {
        // Twelve months alternating 74% and 80%, then eight at 75%: mean 76.2%, limits
        // 66.3% and 86.1%; the last eight are below the mean, none close to a limit.
        let mut v: Vec<Option<f64>> = [0.74, 0.80].repeat(6).into_iter().map(Some).collect();
        v.extend([Some(0.75); 8]);
        let options = XmrOptions {
            target: Some(0.95),
            ..XmrOptions::default()
        };
        let chart = xmr(&v, &[false; 20], &options).unwrap();
        let text = narrate(&chart, &describe(Some(0.95)));
        let mean = chart.segments[0].mean;
        assert_eq!(
            text,
            format!(
                "Four-hour performance shows special cause concern: the last eight points are below \
                 the mean of {:.1}%. The target of 95% lies above the upper process limit, so it \
                 will not be met without a change to the process.",
                mean * 100.0
            )
        );
    }

    #[test]
    fn common_cause_within_limits_and_an_inconsistent_target() {
        let v: Vec<Option<f64>> = [10.0, 12.0].repeat(8).into_iter().map(Some).collect();
        let options = XmrOptions {
            improvement: Improvement::Decrease,
            target: Some(11.5),
            ..XmrOptions::default()
        };
        let chart = xmr(&v, &[false; 16], &options).unwrap();
        let about = Describe {
            title: "Mean ambulance handover",
            unit: Unit::Minutes,
            periods: "weeks",
            target: Some(11.5),
        };
        // Mean 11, range 2: limits 5.68 and 16.32, shown to the minute.
        assert_eq!(
            narrate(&chart, &about),
            "Mean ambulance handover shows common cause variation: the latest value, 12 minutes, \
             lies within the process limits of 6 minutes to 16 minutes around a mean of 11 \
             minutes. The target of 12 minutes lies within the process limits, so it will be met in \
             some weeks and missed in others."
        );
    }

    #[test]
    fn outside_the_limits_and_trends_are_described() {
        let mut v: Vec<Option<f64>> = [100.0, 120.0].repeat(8).into_iter().map(Some).collect();
        v.push(Some(400.0));
        let chart = xmr(&v, &[false; 17], &XmrOptions::default()).unwrap();
        let about = Describe {
            title: "Emergency admissions",
            unit: Unit::Count,
            periods: "days",
            target: None,
        };
        let text = narrate(&chart, &about);
        assert!(text.starts_with("Emergency admissions shows special cause improvement: the latest value, 400, is above the upper process limit of"), "{text}");
    }

    #[test]
    fn units_format_as_a_board_reads_them() {
        assert_eq!(Unit::Percent.format(0.7412), "74.1%");
        assert_eq!(Unit::Percent.format(0.95), "95%");
        assert_eq!(Unit::Count.format(1234.0), "1,234");
        assert_eq!(Unit::Count.format(12.5), "12.5");
        assert_eq!(Unit::Pounds.format(1_234_567.0), "£1,234,567");
        assert_eq!(Unit::Minutes.format(27.4), "27 minutes");
        assert_eq!(Unit::Ratio.format(1.0), "1.00");
        assert_eq!("%".parse::<Unit>(), Ok(Unit::Percent));
    }

    #[test]
    fn empty_and_missing_latest_values_say_so() {
        let chart = xmr(&[], &[], &XmrOptions::default()).unwrap();
        assert_eq!(
            narrate(&chart, &describe(None)),
            "Four-hour performance has no data yet."
        );
        let chart = xmr(&[Some(0.5), None], &[false, false], &XmrOptions::default()).unwrap();
        assert!(narrate(&chart, &describe(None)).contains("no value for the latest period"));
    }
}
