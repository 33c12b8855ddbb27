//! Anhøj's run analysis (Anhøj and Olesen 2014), as qicharts2 applies it to every chart: run
//! charts are judged by it alone, control charts by it beside their limits.
//!
//! Values are compared with the centre line as drawn. Points on the centre line and missing
//! values are set aside; of the rest ("useful" points):
//! - the **longest run** of consecutive points on one side signals a shift when it is longer
//!   than round(log2(n) + 3);
//! - the number of **crossings** (consecutive useful points on opposite sides) signals when it
//!   is fewer than the 5th percentile of Binomial(n − 1, ½).
//!
//! Both limits depend only on n, the number of useful points.

/// The run analysis of one process (rebase group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runs {
    /// Values neither missing nor on the centre line.
    pub useful: usize,
    /// Longest run on one side of the centre line (`None` without useful points).
    pub longest_run: Option<usize>,
    /// A run longer than this is unusually long.
    pub longest_run_limit: Option<usize>,
    /// Times the series crosses the centre line.
    pub crossings: Option<usize>,
    /// Fewer crossings than this are unusually few.
    pub crossings_limit: Option<usize>,
    /// An unusually long run or unusually few crossings: the variation is not random.
    pub signal: bool,
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

/// The run analysis of `values` (in time order) around `centre`.
pub fn runs(values: &[Option<f64>], centre: f64) -> Runs {
    // The side of each useful point; NaN compares as neither side, so a missing centre line
    // leaves no useful points.
    let sides: Vec<bool> = values
        .iter()
        .flatten()
        .filter(|v| **v != centre && !v.is_nan() && !centre.is_nan())
        .map(|v| *v > centre)
        .collect();
    let useful = sides.len();
    if useful == 0 {
        return Runs {
            useful,
            longest_run: None,
            longest_run_limit: None,
            crossings: None,
            crossings_limit: None,
            signal: false,
        };
    }
    let crossings = sides.windows(2).filter(|w| w[0] != w[1]).count();
    let (mut longest, mut current) = (0, 0);
    for (k, side) in sides.iter().enumerate() {
        current = if k > 0 && sides[k - 1] == *side {
            current + 1
        } else {
            1
        };
        longest = longest.max(current);
    }
    let (run_limit, crossings_limit) = anhoej_limits(useful);
    Runs {
        useful,
        longest_run: Some(longest),
        longest_run_limit: Some(run_limit),
        crossings: Some(crossings),
        crossings_limit: Some(crossings_limit),
        signal: longest > run_limit || crossings < crossings_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

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
        // Centre 5; sides + − + − + − + − + − : 9 crossings, longest run 1.
        let r = runs(
            &some(&[6.0, 4.0, 7.0, 3.0, 8.0, 2.0, 9.0, 1.0, 6.0, 4.0]),
            5.0,
        );
        assert_eq!(
            (r.useful, r.crossings, r.longest_run),
            (10, Some(9), Some(1))
        );
        assert!(!r.signal);
    }

    #[test]
    fn points_on_the_centre_and_gaps_are_set_aside() {
        // 1 2 3 4 5 5 5 6 7 8 9 10 around 5: the 5s are set aside, leaving 9 useful points,
        // 1–4 below and 6–10 above: one crossing (fewer than the 2 expected for n = 9) and a
        // run of 5 (not longer than round(log2 9 + 3) = 6).
        let r = runs(
            &some(&[1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
            5.0,
        );
        assert_eq!(r.useful, 9);
        assert_eq!((r.crossings, r.crossings_limit), (Some(1), Some(2)));
        assert_eq!((r.longest_run, r.longest_run_limit), (Some(5), Some(6)));
        assert!(r.signal);
        // A gap does not break a run: 3 below, a gap, 3 below are one run of 6.
        let mut v = some(&[1.0, 1.0, 1.0]);
        v.push(None);
        v.extend(some(&[1.0, 1.0, 1.0, 9.0]));
        let r = runs(&v, 5.0);
        assert_eq!(
            (r.useful, r.longest_run, r.crossings),
            (7, Some(6), Some(1))
        );
    }

    #[test]
    fn nothing_useful_has_no_figures_and_no_signal() {
        let r = runs(&[None, Some(3.0), Some(3.0)], 3.0);
        assert_eq!(r.useful, 0);
        assert_eq!((r.longest_run, r.crossings_limit), (None, None));
        assert!(!r.signal);
        assert_eq!(runs(&some(&[1.0, 2.0]), f64::NAN).useful, 0);
    }
}
