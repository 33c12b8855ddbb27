//! Analysts' SQL: read-only, bounded, and apart from the service's own queries.
//!
//! An analyst's statement runs in a session of its own over the same catalogue (lake tables,
//! the buffer of acknowledged rows, `kpi.*` views, `spc_xmr`), with
//! - its own memory pool, so a runaway join fails alone and the KPIs keep theirs;
//! - its own runtime, whose threads have deep stacks (planning recurses once per nesting
//!   level) and which the boards and ingest never wait on;
//! - a check before planning: one statement, at most [`Limits::max_tokens`] tokens and
//!   [`Limits::max_set_operations`] `UNION`/`INTERSECT`/`EXCEPT` (a chain of thousands
//!   overflows any stack while it is planned, and would take the process with it);
//! - DataFusion's read-only options (no DDL, DML, `COPY`, `CREATE EXTERNAL TABLE`, `SET`),
//!   and no URL tables: SQL reads the lake, never a path;
//! - the functions that build a value of any size asked (`repeat`, `lpad`, `rpad`,
//!   `array_repeat`, `generate_series`, `range`) refusing one over [`MAX_VALUE_BYTES`]
//!   before it is built, since the memory pool only sees what operators hold;
//! - a time limit, a row limit (rows past it are left out and the answer says so) and a
//!   bound on the bytes of the answer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ParamValues, Result as DfResult, exec_err};
use datafusion::dataframe::DataFrame;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::logical_expr::{
    ColumnarValue, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures_util::StreamExt;

use super::{Executor, QueryEngine, QueryError, QueryOutput, read_only};

/// The most bytes one value a function builds may have.
pub const MAX_VALUE_BYTES: usize = 16 << 20;
/// The most bytes one call of such a function may build over a batch.
const MAX_CALL_BYTES: usize = 256 << 20;
/// The analysts' runtime threads' stacks: planning a statement at the token limit recurses
/// deeper than a default 2 MiB stack allows. Reserved, not committed: only what a plan
/// touches is memory.
const STACK_BYTES: usize = 512 << 20;

/// What one analyst statement may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Stopped after this long.
    pub time: Duration,
    /// Rows past this many are left out (the answer says so); `None`: all.
    pub max_rows: Option<usize>,
    /// The answer's Arrow arrays may hold at most this many bytes.
    pub max_result_bytes: usize,
    /// Tokens in the statement.
    pub max_tokens: usize,
    /// `UNION`, `INTERSECT` and `EXCEPT` in the statement.
    pub max_set_operations: usize,
    /// Tables the statement may not read (the audit log, for all but admins).
    pub forbidden_tables: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(60),
            max_rows: Some(10_000),
            max_result_bytes: 256 << 20,
            // Generous for SQL written by hand or a BI tool; a chain of operators this long
            // takes seconds to plan, which the time limit bounds.
            max_tokens: 10_000,
            max_set_operations: 500,
            forbidden_tables: vec![AUDIT_LOG.to_string()],
        }
    }
}

/// The audit log's table: read by admins only.
const AUDIT_LOG: &str = "audit_log";

/// The first of `tables` that `plan` reads, in its subqueries too.
pub(super) fn reads_any(
    plan: &datafusion::logical_expr::LogicalPlan,
    tables: &[String],
) -> Option<String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && tables.iter().any(|t| t == scan.table_name.table())
        {
            found = Some(scan.table_name.table().to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// An analyst statement's answer.
#[derive(Debug)]
pub struct Answer {
    pub output: QueryOutput,
    /// Rows were left out at [`Limits::max_rows`].
    pub truncated: bool,
}

/// The analysts' session and runtime, made at the first statement.
pub(super) struct Sandbox {
    ctx: SessionContext,
    executor: Executor,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

/// Memory the analysts' queries may hold together, apart from the service's.
pub(super) fn sandbox<'a>(
    cell: &'a OnceLock<Sandbox>,
    ctx: &SessionContext,
    memory_limit: usize,
) -> Result<&'a Sandbox, QueryError> {
    if let Some(made) = cell.get() {
        return Ok(made);
    }
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit, 1.0)
        .build_arc()?;
    // The same catalogue (shared, so tables refreshed and views registered later are seen),
    // functions and settings; its own memory pool.
    let state = SessionStateBuilder::new_from_existing(ctx.state())
        .with_runtime_env(runtime)
        .build();
    let analysts = SessionContext::new_with_state(state);
    // The Postgres catalogue and functions BI tools and psql ask for on connect; read-only
    // answers about the catalogue, on every door alike.
    let catalog = analysts
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    datafusion_pg_catalog::setup_pg_catalog(
        &analysts,
        &catalog,
        datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
    )
    .map_err(|e| QueryError::DataFusion(*e))?;
    // Its `current_schema()` says `public`; bright's tables are in the session's default
    // schema (`lake`), where a tool that looks only in the current schema should find them.
    let schema = analysts
        .state()
        .config()
        .options()
        .catalog
        .default_schema
        .clone();
    analysts.register_udf(datafusion::logical_expr::create_udf(
        "current_schema",
        vec![],
        DataType::Utf8,
        datafusion::logical_expr::Volatility::Stable,
        Arc::new(move |_| {
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::Utf8(Some(schema.clone())),
            ))
        }),
    ));
    for name in GUARDED {
        if let Ok(inner) = analysts.udf(name) {
            analysts.register_udf(ScalarUDF::new_from_impl(Bounded {
                inner,
                kind: kind_of(name),
            }));
        }
    }
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // Below the service's own threads: a runaway statement takes only the time they leave.
    let executor = Executor::with_stack("bright-sql", threads, STACK_BYTES, true)?;
    // Two first statements at once: one session is kept, the other dropped unused.
    let _ = cell.set(Sandbox {
        ctx: analysts,
        executor,
    });
    cell.get()
        .ok_or_else(|| QueryError::Stopped("the analysts' session could not be made".into()))
}

/// Refuses a statement that is too big to plan safely, before it is parsed into a tree.
pub fn precheck(sql: &str, limits: &Limits) -> Result<(), QueryError> {
    // Tokens are at least a byte each: a text this long has too many whatever it says.
    if sql.len() > limits.max_tokens.saturating_mul(64) {
        return Err(QueryError::Refused(format!(
            "the statement is {} bytes long; at most {} are accepted",
            sql.len(),
            limits.max_tokens.saturating_mul(64)
        )));
    }
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| QueryError::Refused(format!("the statement does not parse: {e}")))?;
    let mut count = 0usize;
    let mut set_operations = 0usize;
    for token in &tokens {
        match token {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT
                ) =>
            {
                set_operations += 1;
            }
            _ => {}
        }
        count += 1;
    }
    if count > limits.max_tokens {
        return Err(QueryError::Refused(format!(
            "the statement has {count} tokens; at most {} are accepted (split it, or use a \
             table or view)",
            limits.max_tokens
        )));
    }
    if set_operations > limits.max_set_operations {
        return Err(QueryError::Refused(format!(
            "the statement has {set_operations} UNION/INTERSECT/EXCEPT; at most {} are \
             accepted",
            limits.max_set_operations
        )));
    }
    Ok(())
}

/// Refuses text that holds more than one statement. Doors that take one statement a
/// request (a prepared statement) say so, instead of running the first and dropping the rest.
pub fn one_statement(sql: &str) -> Result<(), QueryError> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| QueryError::Refused(format!("the statement does not parse: {e}")))?;
    let mut ended = false;
    for token in &tokens {
        match token {
            Token::SemiColon => ended = true,
            Token::Whitespace(_) | Token::EOF => {}
            _ if ended => return Err(QueryError::Refused("one statement at a time".into())),
            _ => {}
        }
    }
    Ok(())
}

impl QueryEngine {
    /// Runs one analyst's statement in the sandbox (see the module's documentation):
    /// refused with [`QueryError::Refused`] when it may not run, stopped with
    /// [`QueryError::Limit`] when it goes past a limit.
    pub async fn analyst_sql(&self, sql: &str, limits: &Limits) -> Result<Answer, QueryError> {
        precheck(sql, limits)?;
        let sandbox = sandbox(&self.sandbox, &self.ctx, self.analyst_memory)?;
        let ctx = sandbox.ctx.clone();
        let (sql, bounds) = (sql.to_string(), limits.clone());
        let work = async move {
            let plan = plan(&ctx, &sql, &bounds).await?;
            execute(&ctx, plan, None, &bounds).await
        };
        within(limits, sandbox.executor.run(work)).await
    }

    /// Plans one analyst's statement in the sandbox without running it, for doors that
    /// prepare a statement once and run it with parameters (`$1`) later. Refused as
    /// [`QueryEngine::analyst_sql`] refuses.
    pub async fn analyst_plan(
        &self,
        sql: &str,
        limits: &Limits,
    ) -> Result<LogicalPlan, QueryError> {
        precheck(sql, limits)?;
        one_statement(sql)?;
        let sandbox = sandbox(&self.sandbox, &self.ctx, self.analyst_memory)?;
        let ctx = sandbox.ctx.clone();
        let (sql, bounds) = (sql.to_string(), limits.clone());
        // Planning recurses: it runs on the analysts' deep stacks too.
        let work = async move { plan(&ctx, &sql, &bounds).await };
        within(limits, sandbox.executor.run(work)).await
    }

    /// Runs a plan made by [`QueryEngine::analyst_plan`] with its parameters' values, under
    /// `limits`. The plan is checked again: this never runs what the sandbox would refuse.
    pub async fn analyst_execute(
        &self,
        plan: LogicalPlan,
        params: ParamValues,
        limits: &Limits,
    ) -> Result<Answer, QueryError> {
        let sandbox = sandbox(&self.sandbox, &self.ctx, self.analyst_memory)?;
        let ctx = sandbox.ctx.clone();
        let bounds = limits.clone();
        let work = async move {
            read_only().verify_plan(&plan).map_err(refusal)?;
            forbid(&plan, &bounds)?;
            execute(&ctx, plan, Some(params), &bounds).await
        };
        within(limits, sandbox.executor.run(work)).await
    }
}

/// `work`'s answer, or a [`QueryError::Limit`] when it runs past the time limit (dropping
/// the wait stops it).
async fn within<T>(
    limits: &Limits,
    work: impl Future<Output = Result<T, QueryError>>,
) -> Result<T, QueryError> {
    match tokio::time::timeout(limits.time, work).await {
        Ok(answer) => answer,
        Err(_) => Err(QueryError::Limit(format!(
            "the query ran for its time limit of {} s and was stopped",
            limits.time.as_secs_f64()
        ))),
    }
}

/// Refuses a plan that reads a table `limits` forbids.
fn forbid(plan: &LogicalPlan, limits: &Limits) -> Result<(), QueryError> {
    match reads_any(plan, &limits.forbidden_tables) {
        Some(table) => Err(QueryError::Refused(format!("{table} is for admins only"))),
        None => Ok(()),
    }
}

/// Plans `sql` with the read-only options.
async fn plan(ctx: &SessionContext, sql: &str, limits: &Limits) -> Result<LogicalPlan, QueryError> {
    let frame = ctx
        .sql_with_options(sql, read_only())
        .await
        .map_err(refusal)?;
    let plan = frame.into_unoptimized_plan();
    forbid(&plan, limits)?;
    Ok(plan)
}

/// Runs `plan` (with `params` for its placeholders), keeping to `limits`' rows and bytes.
async fn execute(
    ctx: &SessionContext,
    plan: LogicalPlan,
    params: Option<ParamValues>,
    limits: &Limits,
) -> Result<Answer, QueryError> {
    let mut frame = DataFrame::new(ctx.state(), plan);
    if let Some(params) = params {
        frame = frame.with_param_values(params)?;
    }
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let task = frame.task_ctx();
    let plan = yielding(frame.create_physical_plan().await?)?;
    let mut stream = execute_stream(plan, Arc::new(task))?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    let (mut rows, mut bytes, mut truncated) = (0usize, 0usize, false);
    while let Some(batch) = stream.next().await {
        let mut batch = batch?;
        if let Some(max) = limits.max_rows
            && rows + batch.num_rows() > max
        {
            batch = batch.slice(0, max - rows);
            truncated = true;
        }
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if bytes > limits.max_result_bytes {
            return Err(QueryError::Limit(format!(
                "the answer is larger than {} MiB; aggregate it or add a LIMIT",
                limits.max_result_bytes >> 20
            )));
        }
        batches.push(batch);
        if truncated {
            break;
        }
    }
    Ok(Answer {
        output: QueryOutput { schema, batches },
        truncated,
    })
}

/// `plan` with every operator's output counted against the task's scheduling budget, so the
/// task yields every so many batches. A statement whose caller stopped waiting (its time
/// limit, psql's Ctrl-C, a client gone) is aborted, but an aborted task stops only when it
/// yields, and DataFusion counts only what the leaves read: a cross join makes batch after
/// batch from one input batch, seconds of work in which the task never yielded and the next
/// statement found the analysts' threads taken.
fn yielding(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(if node.is::<CooperativeExec>() {
            Transformed::no(node)
        } else {
            Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>)
        })
    })
    .map(|t| t.data)
}

/// A statement the read-only options turned down, said as an analyst needs it.
fn refusal(e: datafusion::error::DataFusionError) -> QueryError {
    let text = e.to_string();
    if text.contains("DDL not supported")
        || text.contains("DML not supported")
        || text.contains("Statement not supported")
    {
        QueryError::Refused(format!(
            "SQL here only reads (SELECT, WITH, VALUES, EXPLAIN): {}",
            text.trim_start_matches("Error during planning: ")
        ))
    } else if text.contains("only supports a single SQL statement") {
        QueryError::Refused("one statement at a time".into())
    } else {
        QueryError::DataFusion(e)
    }
}

/// Functions that build a value as large as an argument asks.
const GUARDED: [&str; 6] = [
    "repeat",
    "lpad",
    "rpad",
    "array_repeat",
    "generate_series",
    "range",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `repeat(text, n)`: the text's bytes × n.
    Repeat,
    /// `lpad`/`rpad(text, n, …)`: n characters of up to 4 bytes.
    Pad,
    /// `array_repeat(element, n)`: the element's size × n.
    ArrayRepeat,
    /// `generate_series`/`range(start, stop[, step])` of integers: 8 bytes a step.
    Series,
}

fn kind_of(name: &str) -> Kind {
    match name {
        "repeat" => Kind::Repeat,
        "lpad" | "rpad" => Kind::Pad,
        "array_repeat" => Kind::ArrayRepeat,
        _ => Kind::Series,
    }
}

/// A function as DataFusion has it, refusing a call whose value would be too big: checked
/// from the arguments before the call where the size follows from them, and on the result
/// after it otherwise.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    kind: Kind,
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> DfResult<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = self.inner.name().to_string();
        let rows = args.number_rows.max(1);
        let sizes = match self.kind {
            Kind::Repeat => {
                let text = arg(&args, 0, rows)?;
                let times = ints(&arg(&args, 1, rows)?)?;
                let lengths = ints(&arrow::compute::kernels::length::length(&text)?)?;
                Some(products(&lengths, &times, 1))
            }
            Kind::Pad => {
                let wanted = ints(&arg(&args, 1, rows)?)?;
                Some(
                    wanted
                        .iter()
                        .map(|n| n.unwrap_or(0).max(0) as u128 * 4)
                        .collect(),
                )
            }
            Kind::ArrayRepeat => {
                let element = arg(&args, 0, rows)?;
                let each = (element.get_array_memory_size() / element.len().max(1)).max(1);
                let times = ints(&arg(&args, 1, rows)?)?;
                Some(
                    times
                        .iter()
                        .map(|n| n.unwrap_or(0).max(0) as u128 * each as u128)
                        .collect(),
                )
            }
            Kind::Series => series_sizes(&args, rows)?,
        };
        if let Some(sizes) = sizes {
            check(&name, &sizes)?;
        }
        let out = self.inner.invoke_with_args(args)?;
        let built = match &out {
            ColumnarValue::Array(a) => a.get_array_memory_size(),
            ColumnarValue::Scalar(s) => s.size(),
        };
        if built > MAX_CALL_BYTES {
            return exec_err!(
                "{name}: the values built are larger than {} MiB",
                MAX_CALL_BYTES >> 20
            );
        }
        Ok(out)
    }
}

/// Argument `i` as an array of `rows`.
fn arg(args: &ScalarFunctionArgs, i: usize, rows: usize) -> DfResult<ArrayRef> {
    match args.args.get(i) {
        Some(v) => v.to_array(rows),
        None => exec_err!("missing argument {}", i + 1),
    }
}

/// An integer (or castable) array as `i64`s.
fn ints(a: &ArrayRef) -> DfResult<Vec<Option<i64>>> {
    let cast = arrow::compute::cast(a, &DataType::Int64)?;
    let Some(cast) = cast.as_any().downcast_ref::<Int64Array>() else {
        return exec_err!("expected integers");
    };
    Ok(cast.iter().collect())
}

fn products(a: &[Option<i64>], b: &[Option<i64>], each: u128) -> Vec<u128> {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.unwrap_or(0).max(0) as u128 * y.unwrap_or(0).max(0) as u128 * each)
        .collect()
}

/// The bytes of each integer series asked for; `None` for dates and times (checked on the
/// result).
fn series_sizes(args: &ScalarFunctionArgs, rows: usize) -> DfResult<Option<Vec<u128>>> {
    let integer = |i: usize| args.args.get(i).is_some_and(|v| v.data_type().is_integer());
    if !(integer(0) && args.args.len() >= 2 && integer(1)) {
        return Ok(None);
    }
    let start = ints(&arg(args, 0, rows)?)?;
    let stop = ints(&arg(args, 1, rows)?)?;
    let step = match args.args.get(2) {
        Some(_) if integer(2) => ints(&arg(args, 2, rows)?)?,
        _ => vec![Some(1); rows],
    };
    Ok(Some(
        start
            .iter()
            .zip(&stop)
            .zip(&step)
            .map(|((a, b), s)| match (a, b, s) {
                (Some(a), Some(b), Some(s)) if *s != 0 => {
                    ((*b as i128 - *a as i128) / *s as i128).unsigned_abs() * 8
                }
                _ => 0,
            })
            .collect(),
    ))
}

fn check(name: &str, sizes: &[u128]) -> DfResult<()> {
    if let Some(big) = sizes.iter().find(|s| **s > MAX_VALUE_BYTES as u128) {
        return exec_err!(
            "{name}: a value of {} MiB was asked for; at most {} MiB are built",
            big >> 20,
            MAX_VALUE_BYTES >> 20
        );
    }
    if sizes.iter().sum::<u128>() > MAX_CALL_BYTES as u128 {
        return exec_err!(
            "{name}: the values asked for come to more than {} MiB",
            MAX_CALL_BYTES >> 20
        );
    }
    Ok(())
}
