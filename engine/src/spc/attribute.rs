//! Control charts beyond XmR, with their standard limits (Montgomery; as qicharts2 and the
//! NHS Power BI SPC visual compute them), all judged by the same Making Data Count rules.
//!
//! | chart | plots | centre | limits (σ per point) |
//! |---|---|---|---|
//! | p | events / trials | p̄ = Σevents / Σtrials | p̄ ± 3√(p̄(1−p̄)/nᵢ), within [0, 1] |
//! | p′ | as p | as p | as p, σ × σ_z (Laney 2002) |
//! | u | count / exposure | ū = Σcount / Σexposure | ū ± 3√(ū/nᵢ), at least 0 |
//! | u′ | as u | as u | as u, σ × σ_z (Laney 2002) |
//! | c | count | c̄ | c̄ ± 3√c̄, at least 0 |
//! | g | cases between events | ḡ | ḡ ± 3√(ḡ(ḡ+1)), at least 0 |
//! | t | time between events | XmR on x^(1/3.6), back-transformed | |
//! | mR | moving range | MR̄ | upper 3.267 × MR̄ only |
//!
//! Laney's σ_z is the mean moving range of the points' z-scores divided by 1.128: it widens
//! the limits of p and u charts with very large denominators, where between-period variation
//! swamps the binomial or Poisson variation. "Close to limit" lines sit at two σ. Each rebase
//! group is its own process; `fix_after_n_points` takes the centre from a group's first rows.

use super::rules::{Band, Flags, classify};
use super::xmr::{
    AssuranceIcon, Improvement, PointType, SpecialCause, VariationIcon, XmrOptions, xmr,
};
use super::{SpcError, r_mean};

/// The t chart's power transform: times between events to the 1/3.6 are nearly normal.
pub const T_POWER: f64 = 3.6;
/// d2 for moving ranges of two, used by Laney's σ_z.
pub const D2: f64 = 1.128;
/// Upper limit of the mR chart as a multiple of the mean moving range (D4 for n = 2).
pub const MR_UPPER: f64 = 3.267;

/// Chart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Making Data Count XmR (individuals).
    Xmr,
    /// Moving ranges.
    Mr,
    /// Proportions.
    P,
    /// Proportions with Laney's correction.
    PPrime,
    /// Rates per unit of exposure.
    U,
    /// Rates with Laney's correction.
    UPrime,
    /// Counts per period.
    C,
    /// Cases (opportunities) between rare events.
    G,
    /// Time between rare events.
    T,
    /// Run chart around the median, judged by Anhøj's rules.
    Run,
}

impl ChartKind {
    /// The name used in KPI manifests and the CLI: `xmr`, `mr`, `p`, `pp`, `u`, `up`, `c`,
    /// `g`, `t`, `run`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Xmr => "xmr",
            ChartKind::Mr => "mr",
            ChartKind::P => "p",
            ChartKind::PPrime => "pp",
            ChartKind::U => "u",
            ChartKind::UPrime => "up",
            ChartKind::C => "c",
            ChartKind::G => "g",
            ChartKind::T => "t",
            ChartKind::Run => "run",
        }
    }

    /// Whether the chart needs a denominator per point.
    pub fn needs_denominator(self) -> bool {
        matches!(
            self,
            ChartKind::P | ChartKind::PPrime | ChartKind::U | ChartKind::UPrime
        )
    }
}

impl std::str::FromStr for ChartKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ChartKind::Xmr,
            ChartKind::Mr,
            ChartKind::P,
            ChartKind::PPrime,
            ChartKind::U,
            ChartKind::UPrime,
            ChartKind::C,
            ChartKind::G,
            ChartKind::T,
            ChartKind::Run,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown chart type '{s}' (xmr, mr, p, pp, u, up, c, g, t, run)"))
    }
}

/// One point of a control chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlPoint {
    /// The plotted statistic (proportion, rate, count…), or `None`.
    pub value: Option<f64>,
    /// Rebase group, numbered as on XmR charts.
    pub rebase_group: u32,
    /// Centre line.
    pub centre: f64,
    /// Lower control limit (NaN where the chart has none).
    pub lcl: f64,
    /// Upper control limit.
    pub ucl: f64,
    /// The rule that labels the point.
    pub special_cause: SpecialCause,
    /// Improvement, concern, neutral or common cause.
    pub point_type: PointType,
}

/// A computed control chart of any kind but run.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlChart {
    /// Which chart.
    pub kind: ChartKind,
    /// One per input row.
    pub points: Vec<ControlPoint>,
    /// From the latest point.
    pub variation_icon: Option<VariationIcon>,
    /// Target against the latest point's limits.
    pub assurance_icon: Option<AssuranceIcon>,
}

/// Computes a control chart of `kind` for `values` (the numerators) and, for p and u charts,
/// `denominators`. Not for run charts (see `super::run`).
pub fn control_chart(
    kind: ChartKind,
    values: &[Option<f64>],
    denominators: Option<&[Option<f64>]>,
    rebase: &[bool],
    options: &XmrOptions,
) -> Result<ControlChart, SpcError> {
    super::xmr::check_lengths(values, rebase)?;
    if let Some(index) = values
        .iter()
        .position(|v| v.is_some_and(|v| !v.is_finite()))
    {
        return Err(SpcError::NotFinite { index });
    }
    let denominators = match (kind.needs_denominator(), denominators) {
        (true, Some(d)) if d.len() == values.len() => Some(d),
        (true, Some(d)) => {
            return Err(SpcError::LengthMismatch {
                values: values.len(),
                rebase: d.len(),
            });
        }
        (true, None) => {
            return Err(SpcError::MissingDenominator {
                chart: kind.as_str(),
            });
        }
        (false, _) => None,
    };
    if let Some(n) = options.fix_after_n_points
        && n < super::xmr::MIN_FIX_AFTER
    {
        return Err(SpcError::FixAfterTooSmall { n });
    }
    let mut points = Vec::with_capacity(values.len());
    let mut group = 0u32;
    let mut start = 0;
    while start < values.len() {
        group += u32::from(rebase[start]);
        let end = (start + 1..values.len())
            .find(|&i| rebase[i])
            .unwrap_or(values.len());
        let den = denominators.map(|d| &d[start..end]);
        chart_group(kind, &values[start..end], den, group, options, &mut points)?;
        start = end;
    }
    let last = points.last();
    let variation_icon = last.map(|p| VariationIcon::from_point(p.point_type, options.improvement));
    let assurance_icon = match (options.target, last) {
        (Some(target), Some(last)) if options.improvement != Improvement::Neutral => Some(
            AssuranceIcon::from_limits(target, last.lcl, last.ucl, options.improvement),
        ),
        _ => None,
    };
    Ok(ControlChart {
        kind,
        points,
        variation_icon,
        assurance_icon,
    })
}

/// How many of a group's rows set its centre line.
fn baseline(rows: usize, options: &XmrOptions) -> usize {
    options.fix_after_n_points.unwrap_or(usize::MAX).min(rows)
}

fn chart_group(
    kind: ChartKind,
    y: &[Option<f64>],
    den: Option<&[Option<f64>]>,
    group: u32,
    options: &XmrOptions,
    out: &mut Vec<ControlPoint>,
) -> Result<(), SpcError> {
    let n = y.len();
    let base = baseline(n, options);
    // The plotted statistic, and per point the band of lines around it.
    let (stat, bands): (Vec<Option<f64>>, Vec<Band>) = match kind {
        ChartKind::P | ChartKind::PPrime | ChartKind::U | ChartKind::UPrime => {
            let den = den.unwrap_or(&[]);
            let stat: Vec<Option<f64>> = y
                .iter()
                .zip(den)
                .map(|(v, d)| match (v, d) {
                    (Some(v), Some(d)) if *d > 0.0 => Some(v / d),
                    _ => None,
                })
                .collect();
            let (events, trials) = y[..base]
                .iter()
                .zip(&den[..base])
                .filter_map(|(v, d)| Some(((*v)?, (*d)?)).filter(|(_, d)| *d > 0.0))
                .fold((0.0, 0.0), |(e, t), (v, d)| (e + v, t + d));
            let centre = if trials > 0.0 {
                events / trials
            } else {
                f64::NAN
            };
            let proportion = matches!(kind, ChartKind::P | ChartKind::PPrime);
            let sigma: Vec<f64> = den
                .iter()
                .map(|d| match d {
                    Some(d) if *d > 0.0 && proportion => (centre * (1.0 - centre) / d).sqrt(),
                    Some(d) if *d > 0.0 => (centre / d).sqrt(),
                    _ => f64::NAN,
                })
                .collect();
            let laney = if matches!(kind, ChartKind::PPrime | ChartKind::UPrime) {
                laney_sigma_z(&stat[..base], &sigma[..base], centre)
            } else {
                1.0
            };
            let bands = sigma
                .iter()
                .map(|s| {
                    let s = s * laney;
                    let (lo, hi) = (centre - 3.0 * s, centre + 3.0 * s);
                    Band {
                        centre,
                        lcl: lo.max(0.0),
                        ucl: if proportion { hi.min(1.0) } else { hi },
                        near_lcl: centre - 2.0 * s,
                        near_ucl: centre + 2.0 * s,
                    }
                })
                .collect();
            (stat, bands)
        }
        ChartKind::C | ChartKind::G => {
            let centre = r_mean(y[..base].iter().flatten().copied());
            let s = if kind == ChartKind::C {
                centre.sqrt()
            } else {
                (centre * (centre + 1.0)).sqrt()
            };
            let band = Band {
                centre,
                lcl: (centre - 3.0 * s).max(0.0),
                ucl: centre + 3.0 * s,
                near_lcl: centre - 2.0 * s,
                near_ucl: centre + 2.0 * s,
            };
            (y.to_vec(), vec![band; n])
        }
        ChartKind::Mr => {
            let mr: Vec<Option<f64>> = std::iter::once(None)
                .chain(y.windows(2).map(|w| Some((w[1]? - w[0]?).abs())))
                .collect();
            let centre = r_mean(mr[..base].iter().flatten().copied());
            let ucl = MR_UPPER * centre;
            let band = Band {
                centre,
                // No lower limit: a range cannot fall below zero.
                lcl: f64::NEG_INFINITY,
                ucl,
                near_lcl: f64::NEG_INFINITY,
                near_ucl: centre + 2.0 / 3.0 * (ucl - centre),
            };
            (mr, vec![band; n])
        }
        ChartKind::T => {
            if let Some(i) = y.iter().position(|v| v.is_some_and(|v| v < 0.0)) {
                return Err(SpcError::Negative { index: i });
            }
            // An XmR chart of the transformed times, judged there, drawn back-transformed.
            let transformed: Vec<Option<f64>> =
                y.iter().map(|v| v.map(|v| v.powf(1.0 / T_POWER))).collect();
            let inner = xmr(&transformed, &vec![false; n], options)?;
            for (p, v) in inner.points.iter().zip(y) {
                let back = |x: f64| x.max(0.0).powf(T_POWER);
                out.push(ControlPoint {
                    value: *v,
                    rebase_group: group,
                    centre: back(p.mean),
                    lcl: back(p.lpl),
                    ucl: back(p.upl),
                    special_cause: p.special_cause,
                    point_type: p.point_type,
                });
            }
            return Ok(());
        }
        ChartKind::Xmr | ChartKind::Run => {
            unreachable!("XmR and run charts have their own functions")
        }
    };
    let flags = Flags::of(&stat, |i| bands[i]);
    let causes = classify(&stat, &flags, &options.rules);
    for ((value, band), cause) in stat.into_iter().zip(bands).zip(causes) {
        out.push(ControlPoint {
            value,
            rebase_group: group,
            centre: band.centre,
            lcl: if band.lcl.is_finite() {
                band.lcl
            } else {
                f64::NAN
            },
            ucl: band.ucl,
            special_cause: cause,
            point_type: PointType::from_cause(cause, options.improvement),
        });
    }
    Ok(())
}

/// Laney's σ_z: the mean moving range of the z-scores (value − centre) / σ, over d2.
fn laney_sigma_z(stat: &[Option<f64>], sigma: &[f64], centre: f64) -> f64 {
    let z: Vec<Option<f64>> = stat
        .iter()
        .zip(sigma)
        .map(|(v, s)| v.filter(|_| *s > 0.0).map(|v| (v - centre) / s))
        .collect();
    let mr = z.windows(2).filter_map(|w| Some((w[1]? - w[0]?).abs()));
    r_mean(mr) / D2
}

#[cfg(test)]
#[path = "attribute_tests.rs"]
mod tests;
