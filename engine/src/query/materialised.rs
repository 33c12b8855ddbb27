//! Helper views computed once per change of the lake tables they read, not once per query.
//!
//! The midnight census rebuilds every inpatient stay from all ADT history: a sort of every
//! event per encounter, then two windows. Seven KPIs read the stays and four the census, and
//! a dashboard tick runs all of them; as plain views, the same stays were rebuilt eleven times
//! per tick. A [`MaterialisedView`] keeps its rows in memory tagged with the snapshot versions
//! of the lake tables underneath, and recomputes only when one of those moves on.
//!
//! The rows live outside the query memory pool (they are shared by every query, not owned by
//! one); a materialised view should therefore be a compact summary of the lake, as stays are.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::{ExecutionPlan, collect_partitioned};
use datafusion::prelude::Expr;
use tokio::sync::Mutex;

use super::LiveTable;

/// What a cached result was computed from: the version of each input, in input order.
type Versions = Vec<super::live::Version>;

/// A view whose rows are computed on first use and kept until an input table changes.
#[derive(Debug)]
pub(super) struct MaterialisedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    /// The lake tables the view reads, directly or through other materialised views.
    inputs: Vec<Arc<LiveTable>>,
    /// Held while computing, so concurrent queries wait for one computation.
    cached: Mutex<Option<(Versions, Arc<MemTable>)>>,
}

impl MaterialisedView {
    /// A view of `plan` (bound, ready to run). Nothing runs until a query reads it.
    pub(super) fn new(plan: LogicalPlan) -> Result<Self> {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let inputs = lake_tables(&plan)?;
        Ok(MaterialisedView {
            plan,
            schema,
            inputs,
            cached: Mutex::new(None),
        })
    }

    fn versions(&self) -> Versions {
        self.inputs.iter().map(|t| t.version()).collect()
    }

    /// The rows for the inputs' current snapshots, computed now if they changed.
    async fn rows(&self, state: &dyn Session) -> Result<Arc<MemTable>> {
        let mut cached = self.cached.lock().await;
        // Read before computing: if a table moves on while this runs, the result is tagged
        // with the older version and the next query computes again.
        let versions = self.versions();
        if let Some((seen, rows)) = cached.as_ref()
            && *seen == versions
        {
            return Ok(rows.clone());
        }
        let physical = state.create_physical_plan(&self.plan).await?;
        let partitions = collect_partitioned(physical, state.task_ctx()).await?;
        // The rows carry the physical plan's schema, which may differ from the declared one
        // in field metadata only; queries were planned against the declared one.
        let partitions = partitions
            .into_iter()
            .map(|batches| {
                batches
                    .into_iter()
                    .map(|b| RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()))
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let rows = Arc::new(MemTable::try_new(self.schema.clone(), partitions)?);
        *cached = Some((versions, rows.clone()));
        Ok(rows)
    }
}

/// The lake tables `plan` reads, directly or through views and materialised views, each once.
pub(super) fn lake_tables(plan: &LogicalPlan) -> Result<Vec<Arc<LiveTable>>> {
    fn walk(plan: &LogicalPlan, found: &mut Vec<Arc<LiveTable>>) -> Result<()> {
        use datafusion::common::tree_node::TreeNodeRecursion;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                if let Some(inner) = scan.source.get_logical_plan() {
                    walk(&inner, found)?;
                } else if let Ok(provider) = source_as_provider(&scan.source) {
                    if let Some(view) = provider.downcast_ref::<MaterialisedView>() {
                        walk(&view.plan, found)?;
                    } else if let Some(live) = LiveTable::downcast(provider.clone())
                        && !found.iter().any(|t| Arc::ptr_eq(t, &live))
                    {
                        found.push(live);
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(())
    }
    let mut found = Vec::new();
    walk(plan, &mut found)?;
    Ok(found)
}

#[async_trait]
impl TableProvider for MaterialisedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        // Returning the plan would make DataFusion inline it into every query, which is what
        // this type exists to avoid.
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.rows(state)
            .await?
            .scan(state, projection, filters, limit)
            .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The in-memory rows are filtered after the scan.
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }
}
