//! The KPI catalogue: the indicators a trust runs on, as SQL anyone can read.
//!
//! A catalogue is a folder (`queries/` in the repository, built into the binary) holding a
//! manifest, `kpis.toml`, one `.sql` file per KPI named after its id, and helper views under
//! `views/` that several KPIs share. [`Catalogue`] loads and checks the manifest and the files
//! (ids, units, chart types, parameters, that every file exists); the query layer
//! (`crate::query`) plans each KPI and registers it as a view `kpi.<id>`, so dashboards, SPC
//! and analysts use one definition.
//!
//! Every KPI query returns the same shape, which is what lets one runner roll any KPI up by
//! any of its breakdowns and feed SPC the right numbers:
//!
//! | column | meaning |
//! | --- | --- |
//! | `period` | `DATE`, the first day of the period (day, Monday of the week, first of the month) |
//! | `org_code` | the trust |
//! | one column per breakdown | e.g. `site`, `ward`, `theatre`, `staff_group` |
//! | `numerator` | `DOUBLE`: the count, the sum of minutes, the pounds… |
//! | `denominator` | `DOUBLE`, or NULL when the KPI is a plain count or amount |
//!
//! The registered view adds `value`: numerator ÷ denominator when there is a denominator (a
//! proportion from 0 to 1 for `%` KPIs, a mean for minutes), else the numerator. Rolling up
//! sums numerators and denominators before dividing, so pooled rates are right.
//!
//! Queries take named placeholders, never pasted values: `$since` (the first period wanted;
//! each query reads as far back as it needs to compute that period exactly) and every
//! parameter in the manifest's `[params]` (thresholds that differ between trusts, or that the
//! national definitions leave open).

mod cache;
mod chart;
mod manifest;
mod pool;

pub use cache::{KpiCache, RefreshReport, RefreshStep};
pub use chart::{ChartError, chart_kpi, chart_series};
pub use manifest::{
    Catalogue, Grain, HelperView, Kpi, KpiError, KpiId, OverTime, Param, ReferenceRange, Rollup,
    Target, VALUE_COLUMNS,
};
pub use pool::{Period, period_end, pool};

/// The column every KPI query returns first: the period's first day.
pub const PERIOD: &str = "period";
/// The sum the KPI's value is made from.
pub const NUMERATOR: &str = "numerator";
/// What the numerator is divided by (NULL for counts and amounts).
pub const DENOMINATOR: &str = "denominator";
/// The column the registered view adds.
pub const VALUE: &str = "value";
/// The placeholder for the first period a query must compute.
pub const SINCE: &str = "since";
/// The schema KPI views are registered in.
pub const SCHEMA: &str = "kpi";
