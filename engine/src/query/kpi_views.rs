//! The KPI catalogue inside the session: helper views and one view per KPI in the `kpi`
//! schema, the parameter values they are bound with, and the runner that rolls a KPI up into
//! the series SPC and dashboards read.
//!
//! Each KPI is planned once, with its placeholders unbound. The view analysts query is that
//! plan bound to the configured parameters and the earliest `$since`; a windowed run binds a
//! later `$since`, so the query reads only what it needs (see [`crate::kpi`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::Date32Type;
use chrono::NaiveDate;
use datafusion::catalog::{MemorySchemaProvider, TableProvider};
use datafusion::common::{ParamValues, ScalarValue, TableReference};
use datafusion::functions::expr_fn::nullif;
use datafusion::functions_aggregate::expr_fn::{max, sum};
use datafusion::logical_expr::{Aggregate, LogicalPlan, Projection};
use datafusion::prelude::{DataFrame, Expr, SessionContext, col, lit};

use super::materialised::{Day, MaterialisedView, keyed_reads, lake_tables, reads_clock};
use super::{QueryError, read_only};
use crate::kpi::{
    Catalogue, DENOMINATOR, Kpi, KpiError, NUMERATOR, PERIOD, Rollup, SCHEMA, SINCE, VALUE,
};
use crate::schema::Table;
use crate::schema::common::ORG_CODE;

/// The earliest `$since`: every period the data holds.
const ALL_TIME: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");

/// The catalogue as planned in one session.
#[derive(Debug)]
pub(super) struct KpiViews {
    catalogue: Catalogue,
    params: HashMap<String, f64>,
    plans: BTreeMap<String, LogicalPlan>,
}

fn planning_error(file: &std::path::Path, source: impl Into<QueryError>) -> QueryError {
    QueryError::Kpi {
        file: file.to_path_buf(),
        source: Box::new(source.into()),
    }
}

impl KpiViews {
    /// The value bound to parameter `name`.
    pub(super) fn param(&self, name: &str) -> Option<f64> {
        self.params.get(name).copied()
    }

    /// Plans every helper view and KPI of `catalogue` and registers them in the `kpi`
    /// schema. `overrides` replace parameter defaults. The first failure names its file.
    pub(super) async fn register(
        ctx: &SessionContext,
        catalogue: Catalogue,
        overrides: &BTreeMap<String, f64>,
    ) -> Result<KpiViews, QueryError> {
        let mut params: HashMap<String, f64> = catalogue
            .params
            .iter()
            .map(|p| (p.name.clone(), p.default))
            .collect();
        for (name, value) in overrides {
            if !params.contains_key(name) {
                return Err(KpiError::UnknownParam { name: name.clone() }.into());
            }
            params.insert(name.clone(), *value);
        }
        let bright = ctx.catalog(super::CATALOG).ok_or_else(|| {
            QueryError::DataFusion(datafusion::error::DataFusionError::Internal(
                "the bright catalog is registered at open".into(),
            ))
        })?;
        bright.register_schema(SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
        let mut views = KpiViews {
            catalogue,
            params,
            plans: BTreeMap::new(),
        };
        for view in &views.catalogue.views {
            let unbound = ctx
                .sql_with_options(&view.sql, read_only())
                .await
                .map_err(|e| planning_error(&view.file, e))?
                .into_unoptimized_plan();
            let plan = views
                .bind(&unbound, ALL_TIME)
                .map_err(|e| planning_error(&view.file, e))?;
            let provider: Arc<dyn TableProvider> = if view.materialise {
                let reads_since = unbound
                    .get_parameter_types()
                    .map_err(|e| planning_error(&view.file, e))?
                    .keys()
                    .any(|name| name.trim_start_matches('$') == SINCE);
                let day = view.day.as_ref().map(|column| Day {
                    column: column.clone(),
                    window: reads_since.then(|| (unbound.clone(), views.values())),
                    recent: view
                        .recent_days
                        .map(|days| i32::try_from(days).unwrap_or(i32::MAX)),
                });
                Arc::new(
                    MaterialisedView::new(plan, view.key.as_deref(), day)
                        .map_err(|e| planning_error(&view.file, e))?,
                )
            } else {
                DataFrame::new(ctx.state(), plan).into_view()
            };
            ctx.register_table(
                TableReference::partial(SCHEMA, view.name.as_str()),
                provider,
            )
            .map_err(|e| planning_error(&view.file, e))?;
        }
        for kpi in &views.catalogue.kpis {
            let unbound = ctx
                .sql_with_options(&kpi.sql, read_only())
                .await
                .map_err(|e| planning_error(&kpi.file, e))?
                .into_unoptimized_plan();
            check_shape(kpi, &unbound)?;
            let bound = views
                .bind(&unbound, ALL_TIME)
                .map_err(|e| planning_error(&kpi.file, e))?;
            let frame = with_value(kpi, DataFrame::new(ctx.state(), bound))
                .map_err(|e| planning_error(&kpi.file, e))?;
            ctx.register_table(
                TableReference::partial(SCHEMA, kpi.id.as_str()),
                frame.into_view(),
            )
            .map_err(|e| planning_error(&kpi.file, e))?;
            views.plans.insert(kpi.id.to_string(), unbound);
        }
        Ok(views)
    }

    pub(super) fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The lake tables KPI `id` reads, through its helper views.
    pub(super) fn tables(&self, id: &str) -> Result<BTreeSet<Table>, QueryError> {
        let plan = self
            .plans
            .get(id)
            .ok_or_else(|| KpiError::UnknownKpi { id: id.to_string() })?;
        Ok(lake_tables(plan)?.iter().map(|t| t.table).collect())
    }

    /// The lake tables KPI `id` reads through keyed materialised views, with their keys.
    pub(super) fn keyed_reads(&self, id: &str) -> Result<BTreeSet<(Table, String)>, QueryError> {
        let plan = self
            .plans
            .get(id)
            .ok_or_else(|| KpiError::UnknownKpi { id: id.to_string() })?;
        Ok(keyed_reads(plan)?)
    }

    /// Whether KPI `id` reads the clock (`now()`), through its helper views: its series can
    /// change while its tables do not.
    pub(super) fn reads_clock(&self, id: &str) -> Result<bool, QueryError> {
        let plan = self
            .plans
            .get(id)
            .ok_or_else(|| KpiError::UnknownKpi { id: id.to_string() })?;
        Ok(reads_clock(plan)?)
    }

    /// Every parameter's value, but `$since`'s.
    fn values(&self) -> HashMap<String, ScalarValue> {
        self.params
            .iter()
            .map(|(name, value)| (name.clone(), ScalarValue::Float64(Some(*value))))
            .collect()
    }

    fn bind(&self, plan: &LogicalPlan, since: NaiveDate) -> Result<LogicalPlan, QueryError> {
        let mut values = self.values();
        values.insert(
            SINCE.to_string(),
            ScalarValue::Date32(Some(Date32Type::from_naive_date(since))),
        );
        Ok(plan.clone().with_param_values(ParamValues::from(values))?)
    }

    /// The KPI's series from `since` (all periods when `None`) up to but excluding `until`,
    /// rolled up by `by` (a subset of its breakdowns and `org_code`; empty for one series),
    /// planned: the engine runs it where its queries run.
    pub(super) async fn series(
        &self,
        ctx: &SessionContext,
        id: &str,
        since: Option<NaiveDate>,
        until: Option<NaiveDate>,
        by: &[String],
    ) -> Result<DataFrame, QueryError> {
        let kpi = self.catalogue.get(id)?;
        for b in by {
            if b != ORG_CODE && !kpi.breakdowns.contains(b) {
                return Err(KpiError::UnknownBreakdown {
                    kpi: kpi.id.to_string(),
                    by: b.clone(),
                    known: std::iter::once(ORG_CODE)
                        .chain(kpi.breakdowns.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into());
            }
        }
        let unbound = self
            .plans
            .get(id)
            .ok_or_else(|| KpiError::UnknownKpi { id: id.to_string() })?;
        let since = since.map_or(ALL_TIME, |day| kpi.grain.period_start(day));
        let bound = self.bind(unbound, since)?;
        let bound = narrowed(&bound, kpi.rollup, by)?.unwrap_or(bound);
        let mut frame = DataFrame::new(ctx.state(), bound).filter(col(PERIOD).gt_eq(lit(
            ScalarValue::Date32(Some(Date32Type::from_naive_date(since))),
        )))?;
        if let Some(until) = until {
            frame = frame.filter(col(PERIOD).lt(lit(ScalarValue::Date32(Some(
                Date32Type::from_naive_date(until),
            )))))?;
        }
        let mut group: Vec<Expr> = vec![col(PERIOD)];
        group.extend(by.iter().map(|b| col(b.as_str())));
        let numerator = match kpi.rollup {
            Rollup::Sum => sum(col(NUMERATOR)),
            Rollup::Max => max(col(NUMERATOR)),
        };
        // The sums get names of their own: grouping by every column the query itself groups
        // by (`org_code` and all breakdowns), DataFusion carries the query's `numerator` and
        // `denominator` through as functionally dependent columns, and the same names twice
        // would not plan.
        const POOLED_NUMERATOR: &str = "pooled_numerator";
        const POOLED_DENOMINATOR: &str = "pooled_denominator";
        let frame = frame.aggregate(
            group,
            vec![
                numerator.alias(POOLED_NUMERATOR),
                sum(col(DENOMINATOR)).alias(POOLED_DENOMINATOR),
            ],
        )?;
        let (numerator, denominator) = (col(POOLED_NUMERATOR), col(POOLED_DENOMINATOR));
        let value = if kpi.denominator.is_some() {
            numerator.clone() / nullif(denominator.clone(), lit(0.0))
        } else {
            numerator.clone()
        };
        let mut columns: Vec<Expr> = vec![col(PERIOD).alias("date")];
        columns.extend(by.iter().map(|b| col(b.as_str())));
        columns.extend([
            value.alias(VALUE),
            numerator.alias(NUMERATOR),
            denominator.alias(DENOMINATOR),
        ]);
        let mut order: Vec<_> = by
            .iter()
            .map(|b| col(b.as_str()).sort(true, false))
            .collect();
        order.push(col("date").sort(true, false));
        Ok(frame.select(columns)?.sort(order)?)
    }
}

/// A KPI planned as one grouped read (`SELECT period, breakdowns, sums GROUP BY ...`),
/// narrowed to group by only what a rollup by `by` keeps: the same series, without first
/// building every breakdown's groups and then adding them up (workforce KPIs at region scale
/// spent three quarters of their time there). `None` when the plan has another shape, or a
/// numerator or denominator that does not pool by adding up (or by the largest, for
/// [`Rollup::Max`]), or when nothing would be dropped.
fn narrowed(
    plan: &LogicalPlan,
    rollup: Rollup,
    by: &[String],
) -> Result<Option<LogicalPlan>, QueryError> {
    let LogicalPlan::Projection(projection) = plan else {
        return Ok(None);
    };
    let LogicalPlan::Aggregate(aggregate) = projection.input.as_ref() else {
        return Ok(None);
    };
    if aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let groups = aggregate.group_expr.len();
    let mut kept_groups = BTreeSet::new();
    let mut kept = Vec::new();
    for (expr, field) in projection.expr.iter().zip(projection.schema.fields()) {
        let name = field.name().as_str();
        if name == PERIOD || by.iter().any(|b| b == name) {
            for column in expr.column_refs() {
                match aggregate.schema.maybe_index_of_column(column) {
                    Some(i) if i < groups => kept_groups.insert(i),
                    _ => return Ok(None),
                };
            }
        } else if name == NUMERATOR || name == DENOMINATOR {
            // The series adds up denominators whatever the rollup.
            let pooled_by = if name == NUMERATOR && rollup == Rollup::Max {
                &["max"][..]
            } else {
                &["sum", "count"][..]
            };
            if !pools(expr, aggregate, pooled_by) {
                return Ok(None);
            }
        } else {
            // A breakdown the rollup drops.
            continue;
        }
        kept.push(expr.clone());
    }
    // With no group left the aggregate would give a row even where the query gives none.
    if kept_groups.is_empty() || kept_groups.len() == groups {
        return Ok(None);
    }
    let group_expr = kept_groups
        .iter()
        .map(|&i| aggregate.group_expr[i].clone())
        .collect();
    let aggregate = Aggregate::try_new(
        Arc::clone(&aggregate.input),
        group_expr,
        aggregate.aggr_expr.clone(),
    )?;
    let projection = Projection::try_new(kept, Arc::new(LogicalPlan::Aggregate(aggregate)))?;
    Ok(Some(LogicalPlan::Projection(projection)))
}

/// Whether `expr`, a numerator or denominator over `aggregate`'s groups, pools across groups
/// by the functions named: a NULL, or one of those aggregates (plain: no DISTINCT, filter or
/// order), either perhaps cast to DOUBLE. Summing counts, sums and casts of them group by
/// group gives what one count or sum over the union gives; a constant would not (it would
/// count groups).
fn pools(expr: &Expr, aggregate: &Aggregate, by: &[&str]) -> bool {
    match expr {
        Expr::Alias(alias) => pools(&alias.expr, aggregate, by),
        Expr::Cast(cast) => {
            cast.field.data_type() == &arrow::datatypes::DataType::Float64
                && pools(&cast.expr, aggregate, by)
        }
        Expr::Literal(value, _) => value.is_null(),
        Expr::Column(column) => {
            let groups = aggregate.group_expr.len();
            let Some(i) = aggregate.schema.maybe_index_of_column(column) else {
                return false;
            };
            let Some(mut aggr) = i
                .checked_sub(groups)
                .and_then(|i| aggregate.aggr_expr.get(i))
            else {
                return false;
            };
            while let Expr::Alias(alias) = aggr {
                aggr = &alias.expr;
            }
            match aggr {
                Expr::AggregateFunction(f) => {
                    by.contains(&f.func.name())
                        && !f.params.distinct
                        && f.params.filter.is_none()
                        && f.params.order_by.is_empty()
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Adds `value` (see [`crate::kpi`]).
fn with_value(kpi: &Kpi, frame: DataFrame) -> datafusion::error::Result<DataFrame> {
    let value = if kpi.denominator.is_some() {
        col(NUMERATOR) / nullif(col(DENOMINATOR), lit(0.0))
    } else {
        col(NUMERATOR)
    };
    frame.with_column(VALUE, value)
}

/// The query must return the catalogue's columns, in order, with numbers where numbers go.
fn check_shape(kpi: &Kpi, plan: &LogicalPlan) -> Result<(), QueryError> {
    use arrow::datatypes::DataType;
    let schema = plan.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let expected = kpi.columns();
    let problem = if names != expected {
        Some(format!(
            "returns columns ({}), the manifest says ({})",
            names.join(", "),
            expected.join(", ")
        ))
    } else {
        let type_of = |name: &str| {
            schema
                .field_with_unqualified_name(name)
                .map(|f| f.data_type().clone())
                .ok()
        };
        match (type_of(PERIOD), type_of(NUMERATOR), type_of(DENOMINATOR)) {
            (Some(DataType::Date32), Some(DataType::Float64), Some(DataType::Float64)) => None,
            (p, n, d) => Some(format!(
                "period must be DATE and numerator, denominator DOUBLE (found {p:?}, {n:?}, {d:?}); \
                 cast them in the query"
            )),
        }
    };
    match problem {
        None => Ok(()),
        Some(message) => Err(KpiError::Invalid {
            file: kpi.file.clone(),
            message,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    /// `sql` planned over an empty `shifts` table, as the catalogue plans a KPI.
    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("day", DataType::Date32, false),
            Field::new("org_code", DataType::Utf8, false),
            Field::new("ward", DataType::Utf8, false),
            Field::new("hours", DataType::Float64, true),
        ]));
        let table = MemTable::try_new(schema, vec![vec![]]).expect("table");
        ctx.register_table("shifts", Arc::new(table))
            .expect("registers");
        ctx.sql(sql).await.expect("plans").into_unoptimized_plan()
    }

    /// How many columns the narrowed plan groups by, `None` when it is not narrowed.
    async fn narrowed_groups(sql: &str, rollup: Rollup, by: &[&str]) -> Option<usize> {
        let by: Vec<String> = by.iter().map(|b| b.to_string()).collect();
        let narrowed = narrowed(&plan(sql).await, rollup, &by).expect("narrows")?;
        let LogicalPlan::Projection(projection) = &narrowed else {
            panic!("a projection: {narrowed}");
        };
        let LogicalPlan::Aggregate(aggregate) = projection.input.as_ref() else {
            panic!("over an aggregate: {narrowed}");
        };
        // The breakdowns the rollup drops are gone from what the series reads.
        let names: Vec<&str> = projection
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert!(
            !names.contains(&"ward") || by.iter().any(|b| b == "ward"),
            "{names:?}"
        );
        Some(aggregate.group_expr.len())
    }

    const SUMS: &str = "SELECT day AS period, org_code, ward, \
        CAST(SUM(CASE WHEN hours > 8 THEN hours ELSE 0.0 END) AS DOUBLE) AS numerator, \
        CAST(COUNT(*) AS DOUBLE) AS denominator FROM shifts GROUP BY day, org_code, ward";

    #[tokio::test]
    async fn a_rollup_of_sums_and_counts_groups_by_what_it_keeps() {
        assert_eq!(narrowed_groups(SUMS, Rollup::Sum, &[]).await, Some(1));
        assert_eq!(narrowed_groups(SUMS, Rollup::Sum, &["ward"]).await, Some(2));
        assert_eq!(
            narrowed_groups(SUMS, Rollup::Sum, &["org_code", "ward"]).await,
            None,
            "every group kept: nothing to narrow"
        );
        let null_denominator = "SELECT day AS period, org_code, ward, SUM(hours) AS numerator, \
            CAST(NULL AS DOUBLE) AS denominator FROM shifts GROUP BY day, org_code, ward";
        assert_eq!(
            narrowed_groups(null_denominator, Rollup::Sum, &[]).await,
            Some(1)
        );
        let largest = "SELECT day AS period, org_code, ward, MAX(hours) AS numerator, \
            CAST(NULL AS DOUBLE) AS denominator FROM shifts GROUP BY day, org_code, ward";
        assert_eq!(narrowed_groups(largest, Rollup::Max, &[]).await, Some(1));
    }

    #[tokio::test]
    async fn a_rollup_that_would_change_the_answer_is_left_as_written() {
        for (what, sql, rollup) in [
            ("a largest value's series from sums", SUMS, Rollup::Max),
            (
                "a mean",
                "SELECT day AS period, org_code, ward, AVG(hours) AS numerator, \
                 CAST(NULL AS DOUBLE) AS denominator FROM shifts GROUP BY day, org_code, ward",
                Rollup::Sum,
            ),
            (
                "a distinct count",
                "SELECT day AS period, org_code, ward, \
                 CAST(COUNT(DISTINCT hours) AS DOUBLE) AS numerator, \
                 CAST(NULL AS DOUBLE) AS denominator FROM shifts GROUP BY day, org_code, ward",
                Rollup::Sum,
            ),
            (
                "a constant denominator (it counts groups)",
                "SELECT day AS period, org_code, ward, SUM(hours) AS numerator, \
                 1.0 AS denominator FROM shifts GROUP BY day, org_code, ward",
                Rollup::Sum,
            ),
            (
                "a HAVING clause",
                "SELECT day AS period, org_code, ward, SUM(hours) AS numerator, \
                 CAST(NULL AS DOUBLE) AS denominator FROM shifts \
                 GROUP BY day, org_code, ward HAVING SUM(hours) > 10",
                Rollup::Sum,
            ),
            (
                "a period grouped by nothing (one row even over no rows)",
                "SELECT DATE '2024-01-01' AS period, org_code, ward, SUM(hours) AS numerator, \
                 CAST(NULL AS DOUBLE) AS denominator FROM shifts GROUP BY org_code, ward",
                Rollup::Sum,
            ),
            (
                "no grouping",
                "SELECT day AS period, org_code, ward, hours AS numerator, \
                 CAST(NULL AS DOUBLE) AS denominator FROM shifts",
                Rollup::Sum,
            ),
        ] {
            assert_eq!(narrowed_groups(sql, rollup, &[]).await, None, "{what}");
        }
    }
}
