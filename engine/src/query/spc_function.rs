//! `spc_xmr(query [, improvement [, target [, rebase_dates]]])`: the Making Data Count XmR
//! chart as a SQL table function, for analysts.
//!
//! `query` is a read-only SQL string whose first two columns are the date (DATE or
//! TIMESTAMP) and the value; `improvement` is `increase`, `decrease` or `neutral`; `target` a
//! number; `rebase_dates` a comma-separated list of `YYYY-MM-DD`. The result has the columns
//! of `bright spc` (`crate::spc::output`), computed by the same engine, so the numbers are the
//! CLI's. The inner query runs when the outer one does.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Date32Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::TableType;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, Expr};

use crate::spc::output::{points_batch, points_schema};
use crate::spc::{Improvement, XmrOptions, xmr};

/// The function's registered name.
pub const NAME: &str = "spc_xmr";

#[derive(Debug)]
pub(super) struct SpcXmrFunction;

fn plan_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(format!("{NAME}: {}", message.into()))
}

fn literal_text(expr: &Expr, what: &str) -> Result<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Ok(s.clone()),
        _ => Err(plan_error(format!("{what} must be a text literal"))),
    }
}

fn literal_number(expr: &Expr) -> Result<f64> {
    match expr {
        Expr::Literal(value, _) => match value.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(x)) if x.is_finite() => Ok(x),
            _ => Err(plan_error("the target must be a number")),
        },
        _ => Err(plan_error("the target must be a number literal")),
    }
}

impl TableFunctionImpl for SpcXmrFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 4 {
            return Err(plan_error(
                "expected (query [, improvement [, target [, rebase_dates]]])",
            ));
        }
        let query = literal_text(&exprs[0], "the query")?;
        let improvement = match exprs.get(1) {
            Some(e) => literal_text(e, "the improvement direction")?
                .parse::<Improvement>()
                .map_err(plan_error)?,
            None => Improvement::Increase,
        };
        let target = exprs.get(2).map(literal_number).transpose()?;
        let rebase = match exprs.get(3) {
            Some(e) => literal_text(e, "the rebase dates")?
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map(Date32Type::from_naive_date)
                        .map_err(|_| plan_error(format!("'{d}' is not a YYYY-MM-DD date")))
                })
                .collect::<Result<Vec<i32>>>()?,
            None => Vec::new(),
        };
        Ok(Arc::new(SpcXmrTable {
            query,
            rebase,
            options: XmrOptions {
                improvement,
                target,
                ..XmrOptions::default()
            },
        }))
    }
}

/// The chart of one call, computed when scanned.
#[derive(Debug)]
struct SpcXmrTable {
    query: String,
    rebase: Vec<i32>,
    options: XmrOptions,
}

impl SpcXmrTable {
    async fn compute(&self, state: &SessionState) -> Result<MemTable> {
        // The inner statement is an analyst's too: the same check before it is planned.
        super::sandbox::precheck(&self.query, &super::Limits::default())
            .map_err(|e| plan_error(e.to_string()))?;
        let plan = state.create_logical_plan(&self.query).await?;
        // Admins read the audit log directly, never through a chart of it.
        if let Some(table) = super::sandbox::reads_any(&plan, &["audit_log".to_string()]) {
            return Err(plan_error(format!("{table} cannot be charted")));
        }
        super::read_only().verify_plan(&plan)?;
        let batches = DataFrame::new(state.clone(), plan).collect().await?;
        let mut rows: Vec<(i32, Option<f64>)> = Vec::new();
        for batch in &batches {
            if batch.num_columns() < 2 {
                return Err(plan_error(
                    "the query must return a date and a value column",
                ));
            }
            // Strict casts: text that is not a date or number is an error, not a gap.
            let strict = CastOptions {
                safe: false,
                ..CastOptions::default()
            };
            let dates = cast_with_options(batch.column(0), &DataType::Date32, &strict)
                .map_err(|e| plan_error(format!("the first column is not a date: {e}")))?;
            let values = cast_with_options(batch.column(1), &DataType::Float64, &strict)
                .map_err(|e| plan_error(format!("the second column is not a number: {e}")))?;
            let (dates, values) = (
                dates.as_primitive::<Date32Type>(),
                values.as_primitive::<arrow::datatypes::Float64Type>(),
            );
            for i in 0..batch.num_rows() {
                if dates.is_null(i) {
                    return Err(plan_error("a row has no date"));
                }
                let value = values.is_valid(i).then(|| values.value(i));
                if value.is_some_and(|v| !v.is_finite()) {
                    return Err(plan_error("a value is not a finite number"));
                }
                rows.push((dates.value(i), value));
            }
        }
        rows.sort_by_key(|r| r.0);
        if let Some(pair) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(pair[0].0 + 719_163)
                .map(|d| d.to_string())
                .unwrap_or_default();
            return Err(plan_error(format!("duplicate date {date}")));
        }
        let days: Vec<i32> = rows.iter().map(|r| r.0).collect();
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.1).collect();
        let rebase: Vec<bool> = days.iter().map(|d| self.rebase.contains(d)).collect();
        let chart = xmr(&values, &rebase, &self.options).map_err(|e| plan_error(e.to_string()))?;
        let batch = points_batch(&days, &chart)?;
        MemTable::try_new(points_schema(), vec![vec![batch]])
    }
}

#[async_trait]
impl TableProvider for SpcXmrTable {
    fn schema(&self) -> SchemaRef {
        points_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let session_state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| plan_error("needs a full session to run its query"))?;
        let table = self.compute(session_state).await?;
        table.scan(state, projection, filters, limit).await
    }
}
