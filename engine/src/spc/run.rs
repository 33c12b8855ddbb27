//! Run charts: the median as centre line, judged by Anhøj's rules (Anhøj and Olesen 2014),
//! as qicharts2 applies them.
//!
//! Points on the median and missing values are set aside; of the rest ("useful" points):
//! - the **longest run** of consecutive points on one side of the median signals a shift
//!   when it is longer than round(log2(n) + 3);
//! - the number of **crossings** (consecutive useful points on opposite sides) signals when it
//!   is fewer than the 5th percentile of Binomial(n − 1, 0.5).
//!
//! Both limits depend only on n, the number of useful points.

use super::r_median;

/// A computed run chart.
#[derive(Debug, Clone, PartialEq)]
pub struct RunChart {
    /// Median of the values present (NaN when none).
    pub median: f64,
    /// Values neither missing nor on the median.
    pub useful: usize,
    /// Longest run on one side of the median.
    pub longest_run: usize,
    /// A run longer than this is unusually long.
    pub longest_run_limit: usize,
    /// Times the series crosses the median.
    pub crossings: usize,
    /// Fewer crossings than this are unusually few.
    pub crossings_limit: usize,
    /// The longest run is unusually long: the process has shifted.
    pub unusually_long_run: bool,
    /// The series crosses the median unusually seldom: the process has shifted.
    pub unusually_few_crossings: bool,
    /// Per point: part of an unusually long run.
    pub in_long_run: Vec<bool>,
}

impl RunChart {
    /// Either signal is present: the variation is not random.
    pub fn signal(&self) -> bool {
        self.unusually_long_run || self.unusually_few_crossings
    }
}

/// Anhøj's limits for `useful` points: (longest run allowed, fewest crossings expected).
pub fn anhoej_limits(useful: usize) -> (usize, usize) {
    if useful == 0 {
        return (0, 0);
    }
    let run = ((useful as f64).log2() + 3.0).round() as usize;
    (run, binomial_quantile(0.05, useful - 1))
}

/// The smallest k with P(X ≤ k) ≥ p for X ~ Binomial(n, 1/2) (R's `qbinom(p, n, 0.5)`),
/// summed in logs so large n do not underflow.
fn binomial_quantile(p: f64, n: usize) -> usize {
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0f64;
    let mut cumulative = 0.0f64;
    for k in 0..=n {
        if k > 0 {
            ln_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        cumulative += (ln_choose + ln_half_n).exp();
        // A relative tolerance absorbs rounding in the sum (R's qbinom allows the same).
        if cumulative >= p * (1.0 - 64.0 * f64::EPSILON) {
            return k;
        }
    }
    n
}

/// The run chart of `values` in time order.
pub fn run_chart(values: &[Option<f64>]) -> RunChart {
    let median = r_median(values.iter().flatten().copied());
    // Side of each useful point, with its position.
    let sides: Vec<(usize, i8)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let v = (*v)?;
            if v > median {
                Some((i, 1))
            } else if v < median {
                Some((i, -1))
            } else {
                None
            }
        })
        .collect();
    let useful = sides.len();
    let (longest_run_limit, crossings_limit) = anhoej_limits(useful);
    let crossings = sides.windows(2).filter(|w| w[0].1 != w[1].1).count();
    // Runs as (first index into `sides`, length).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (k, (_, side)) in sides.iter().enumerate() {
        match runs.last_mut() {
            Some((start, len)) if sides[*start].1 == *side => *len += 1,
            _ => runs.push((k, 1)),
        }
    }
    let longest_run = runs.iter().map(|r| r.1).max().unwrap_or(0);
    let mut in_long_run = vec![false; values.len()];
    for &(start, len) in runs.iter().filter(|r| r.1 > longest_run_limit) {
        for (position, _) in &sides[start..start + len] {
            in_long_run[*position] = true;
        }
    }
    RunChart {
        median,
        useful,
        longest_run,
        longest_run_limit,
        crossings,
        crossings_limit,
        unusually_long_run: useful > 0 && longest_run > longest_run_limit,
        unusually_few_crossings: useful > 1 && crossings < crossings_limit,
        in_long_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_the_published_table() {
        // Anhøj & Olesen (2014), table 1: useful points → longest run, fewest crossings.
        for (n, run, crossings) in [
            (10, 6, 2),
            (11, 6, 2),
            (12, 7, 3),
            (14, 7, 4),
            (17, 7, 5),
            (20, 7, 6),
            (24, 8, 8),
            (30, 8, 10),
            (40, 8, 14),
            (50, 9, 19),
            (100, 10, 41),
        ] {
            assert_eq!(anhoej_limits(n), (run, crossings), "n = {n}");
        }
        // Large n do not underflow: for Binomial(4999, 1/2) the 5% quantile is 2441 (exact
        // rational arithmetic).
        assert_eq!(anhoej_limits(5000).1, 2441);
    }

    #[test]
    fn a_random_looking_series_gives_no_signal() {
        // Median 5; sides + − + − + − + − + − : 9 crossings, longest run 1.
        let v: Vec<Option<f64>> = [6.0, 4.0, 7.0, 3.0, 8.0, 2.0, 9.0, 1.0, 6.0, 4.0]
            .into_iter()
            .map(Some)
            .collect();
        let r = run_chart(&v);
        assert_eq!(r.median, 5.0);
        assert_eq!((r.useful, r.crossings, r.longest_run), (10, 9, 1));
        assert!(!r.signal());
    }

    #[test]
    fn a_long_run_and_few_crossings_signal_and_the_median_points_are_set_aside() {
        // 12 values: median of 1 2 3 4 5 5 5 6 7 8 9 10 is 5. The 5s are set aside, leaving
        // 9 useful points: 1 2 3 4 below, then 6 7 8 9 10 above: one crossing (fewer than
        // the 2 expected for n = 9) and a run of 5 (not longer than round(log2 9 + 3) = 6).
        let v: Vec<Option<f64>> = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
            .into_iter()
            .map(Some)
            .collect();
        let r = run_chart(&v);
        assert_eq!(r.median, 5.0);
        assert_eq!(r.useful, 9);
        assert_eq!((r.crossings, r.crossings_limit), (1, 2));
        assert_eq!((r.longest_run, r.longest_run_limit), (5, 6));
        assert!(r.unusually_few_crossings && !r.unusually_long_run);

        // 1, 30 six times, then eight 40s and a gap: the median is 30, so the 30s are set
        // aside and 14 points remain: six 1s below, then eight 40s above. A run of 8 is
        // longer than round(log2 14 + 3) = 7.
        let mut v: Vec<Option<f64>> = [1.0, 30.0].repeat(6).into_iter().map(Some).collect();
        v.extend([Some(40.0); 8]);
        v.push(None);
        let r = run_chart(&v);
        assert_eq!((r.median, r.useful), (30.0, 14));
        assert_eq!((r.longest_run, r.longest_run_limit), (8, 7));
        assert!(r.unusually_long_run);
        assert_eq!(r.in_long_run.iter().filter(|b| **b).count(), 8);
        assert!(
            r.in_long_run[12] && !r.in_long_run[20],
            "the gap is not part of a run"
        );
    }

    #[test]
    fn an_empty_series_has_no_signal() {
        let r = run_chart(&[None, None]);
        assert!(r.median.is_nan());
        assert_eq!(r.useful, 0);
        assert!(!r.signal());
    }
}
