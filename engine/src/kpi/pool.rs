//! A KPI's periods pooled into longer ones, as charts show them: daily operational KPIs
//! with a weekday pattern read sensibly by week or month, and only when the days are pooled
//! (Σnumerator ÷ Σdenominator), never averaged as percentages. How a KPI pools is its
//! manifest's `over_time` ([`OverTime`]).
//!
//! Only complete periods are kept: a week that has not ended yet would read as a fall in a
//! count (fewer days so far) and, on an SPC chart, as a signal that is not there.

use chrono::{Days, Months, NaiveDate};

use super::manifest::{Grain, Kpi, OverTime};

/// One period of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Its first day.
    pub start: NaiveDate,
    /// What is plotted: numerator ÷ denominator, or the numerator.
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
}

/// The first day after the period of `grain` that starts on `start`.
pub fn period_end(grain: Grain, start: NaiveDate) -> NaiveDate {
    let next = match grain {
        Grain::Day => start.checked_add_days(Days::new(1)),
        Grain::Week => start.checked_add_days(Days::new(7)),
        Grain::Month => start.checked_add_months(Months::new(1)),
    };
    next.unwrap_or(NaiveDate::MAX)
}

/// `rows` (one series of `kpi` at its own grain, in date order) pooled into periods of
/// `grain`, keeping only periods that ended on or before `complete_before` (the first day
/// whose data may still be arriving: today). A grain finer than the KPI's keeps its own.
pub fn pool(kpi: &Kpi, rows: &[Period], grain: Grain, complete_before: NaiveDate) -> Vec<Period> {
    let grain = grain.max(kpi.grain);
    let mut out: Vec<Period> = Vec::new();
    // Per period being pooled: Σ (or max) of numerators, Σ denominators, values counted.
    let mut open: Option<(NaiveDate, Option<f64>, Option<f64>, usize)> = None;
    let close = |open: Option<(NaiveDate, Option<f64>, Option<f64>, usize)>,
                 out: &mut Vec<Period>| {
        let Some((start, numerator, denominator, n)) = open else {
            return;
        };
        if period_end(grain, start) > complete_before {
            return;
        }
        let numerator = match kpi.over_time {
            OverTime::Mean => numerator.map(|sum| sum / n as f64),
            OverTime::Sum | OverTime::Max => numerator,
        };
        let value = match (kpi.denominator.is_some(), numerator, denominator) {
            (false, numerator, _) => numerator,
            (true, Some(n), Some(d)) if d != 0.0 => Some(n / d),
            (true, _, _) => None,
        };
        out.push(Period {
            start,
            value,
            numerator,
            denominator,
        });
    };
    let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    for row in rows {
        let start = grain.period_start(row.start);
        if open.is_some_and(|(s, ..)| s != start) {
            close(open.take(), &mut out);
        }
        let (_, numerator, denominator, n) = open.get_or_insert((start, None, None, 0));
        *numerator = match (kpi.over_time, *numerator, row.numerator) {
            (OverTime::Max, Some(a), Some(b)) => Some(a.max(b)),
            (_, a, b) => add(a, b),
        };
        *denominator = add(*denominator, row.denominator);
        *n += usize::from(row.numerator.is_some());
    }
    close(open, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::Catalogue;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("a day")
    }

    fn kpi(id: &str) -> Kpi {
        Catalogue::embedded()
            .expect("the catalogue loads")
            .get(id)
            .expect("the KPI exists")
            .clone()
    }

    fn row(d: u32, numerator: f64, denominator: Option<f64>) -> Period {
        Period {
            start: day(d),
            value: Some(denominator.map_or(numerator, |den| numerator / den)),
            numerator: Some(numerator),
            denominator,
        }
    }

    #[test]
    fn proportions_pool_numerators_and_denominators() {
        // Monday 2 March to Sunday 15 March 2026: two whole weeks, then a Monday.
        let rows: Vec<Period> = (2..=16)
            .map(|d| {
                if d % 2 == 0 {
                    row(d, 9.0, Some(10.0))
                } else {
                    row(d, 50.0, Some(100.0))
                }
            })
            .collect();
        let weeks = pool(&kpi("ed_4h_performance"), &rows, Grain::Week, day(17));
        // The Monday of the third week is alone and its week not over: left out.
        assert_eq!(weeks.len(), 2);
        assert_eq!(weeks[0].start, day(2));
        // Week 1: four even days (9/10) and three odd (50/100): 236/340, not the mean of
        // the seven percentages (0.686).
        assert_eq!(weeks[0].numerator, Some(4.0 * 9.0 + 3.0 * 50.0));
        assert_eq!(weeks[0].denominator, Some(4.0 * 10.0 + 3.0 * 100.0));
        assert_eq!(weeks[0].value, Some(186.0 / 340.0));
    }

    #[test]
    fn stocks_average_and_flows_add_up() {
        let rows: Vec<Period> = (2..=8).map(|d| row(d, f64::from(d), None)).collect();
        let stock = pool(&kpi("los_over_7_days"), &rows, Grain::Week, day(9));
        assert_eq!(stock[0].value, Some(5.0), "mean of 2..=8");
        let flow = pool(&kpi("emergency_admissions"), &rows, Grain::Week, day(9));
        assert_eq!(flow[0].value, Some(35.0), "sum of 2..=8");
        let worst = pool(&kpi("feed_freshness_min"), &rows, Grain::Week, day(9));
        assert_eq!(worst[0].value, Some(8.0));
        // By day, only days before today.
        let days = pool(&kpi("emergency_admissions"), &rows, Grain::Day, day(8));
        assert_eq!(days.len(), 6);
        assert_eq!(days.last().map(|p| p.start), Some(day(7)));
    }
}
