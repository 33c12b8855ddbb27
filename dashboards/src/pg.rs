//! The Postgres wire door (`bright serve --pg-addr`): psql, psycopg and JDBC/ODBC BI tools
//! run analysts' SQL over the lake as if bright were a Postgres server.
//!
//! The protocol (startup, simple and extended queries, cancel, TLS) is pgwire's, and the
//! Postgres dialect, catalogue questions and session statements (`SET application_name`,
//! `BEGIN`, `SHOW`) are answered by datafusion-postgres. What is bright's:
//! - signing in: a person's password (their role must allow SQL) or an API token with the
//!   `sql` scope as the password, with the pages' throttling of failed attempts; each try is
//!   in the audit log;
//! - every statement that reads data goes through the engine's sandbox, as on every other
//!   door ([`bright_engine::query::sandbox`]): read-only, its time and answer limits, its own
//!   memory and threads, and the audit log; the library's own execution path is never used;
//! - `SET` of engine settings is refused (client settings such as `DateStyle` are kept);
//! - the connections run on a runtime of their own, with deep stacks and a lower priority,
//!   so a client's SQL, however deep, never takes the boards' threads or the process.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bright_engine::query::{Answer, Executor, Limits, QueryError, one_statement, precheck};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, QueryResponse, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, METADATA_USER, NoopHandler,
    PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::{Sink, SinkExt};

use crate::AppState;
use crate::auth::Client;
use crate::routes::sql::{Ran, SignIn, outcome, record, run_with, sign_in, tool_limits};

/// How the door is named in the audit log.
const DOOR: &str = "pg";
/// The connections' threads' stacks: parsing a statement recurses once per nesting level.
const STACK_BYTES: usize = 64 << 20;

/// Serves the Postgres wire protocol on `listener` until the returned future is dropped.
/// `tls`, when given, is offered to clients that ask for it (psql's `sslmode=require`).
pub fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Option<datafusion_postgres::pgwire::tokio::TlsAcceptor>,
) -> std::io::Result<impl Future<Output = std::io::Result<()>> + Send + 'static> {
    listener.set_nonblocking(true)?;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let executor = Executor::with_stack("bright-pg", threads, STACK_BYTES, true)?;
    let door = Arc::new(Door::new(state));
    Ok(async move {
        let accepting = async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            loop {
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "A Postgres connection could not be accepted.");
                        continue;
                    }
                };
                let (door, tls) = (door.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = socket.set_nodelay(true);
                    if let Err(e) =
                        datafusion_postgres::pgwire::tokio::process_socket(socket, tls, door).await
                    {
                        tracing::info!(%peer, error = %e, "A Postgres connection ended with an error.");
                    }
                });
            }
        };
        executor
            .run(accepting)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// The handlers of every connection.
struct Door {
    queries: Arc<Queries>,
    login: Arc<Login>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Door {
    fn new(state: AppState) -> Door {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(EngineSettings),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::new(Sandboxed {
                state: state.clone(),
            }),
        ];
        // The library's session only answers session statements (SET, SHOW): every other
        // statement goes through the engine's sandbox, so it is given an empty session of its
        // own, which holds nothing and is used for nothing else.
        let service = Arc::new(DfSessionService::new_with_hooks(
            Arc::new(SessionContext::new()),
            hooks,
        ));
        let parser = Arc::new(Checked {
            inner: service.query_parser(),
        });
        let manager = Arc::new(ConnectionManager::new());
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = format!("16.0 (bright {})", env!("CARGO_PKG_VERSION"));
        parameters.default_transaction_read_only = true;
        Door {
            queries: Arc::new(Queries {
                service,
                parser,
                state: state.clone(),
            }),
            login: Arc::new(Login {
                state,
                manager: manager.clone(),
                parameters,
                keys: RandomPidSecretKeyGenerator::default(),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(manager)),
        }
    }
}

impl PgWireServerHandlers for Door {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.login.clone()
    }

    fn copy_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::copy::CopyHandler> {
        Arc::new(NoopHandler)
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// An error a Postgres client shows as `ERROR:  <message>`, with its SQLSTATE.
fn user_error(severity: &str, code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.to_string(),
        code.to_string(),
        message,
    )))
}

/// Why a statement gave no answer, as SQLSTATE and message.
fn statement_error(e: QueryError) -> PgWireError {
    let code = match &e {
        // insufficient_privilege: the sandbox does not allow it.
        QueryError::Refused(_) => "42501",
        // query_canceled, as for Postgres' statement_timeout.
        QueryError::Limit(_) => "57014",
        // syntax_error_or_access_rule_violation: what the analyst wrote.
        QueryError::DataFusion(_) | QueryError::Catalogue(_) => "42000",
        _ => "XX000",
    };
    user_error("ERROR", code, e.to_string())
}

fn ran_error(e: Ran) -> PgWireError {
    match e {
        // too_many_connections: the per-client limit of statements at once.
        Ran::Busy(message) => user_error("ERROR", "53300", message),
        Ran::Query(e) => statement_error(e),
    }
}

/// The signed-in client of a connection (set when it signed in).
fn signed_in(client: &(impl ClientInfo + ?Sized)) -> PgWireResult<Arc<Client>> {
    client
        .session_extensions()
        .get::<Client>()
        .ok_or_else(|| user_error("FATAL", "28000", "not signed in".into()))
}

/// The engine the statements run in, or the error a client sees without one.
fn engine(state: &AppState) -> PgWireResult<Arc<bright_engine::query::QueryEngine>> {
    crate::routes::sql::engine(state)
        .ok_or_else(|| user_error("ERROR", "58000", "this service has no query engine".into()))
}

/// An answer as Postgres rows, in the formats the client asked for.
fn rows(
    answer: Answer,
    format: &Format,
    client: &(impl ClientInfo + ?Sized),
) -> PgWireResult<QueryResponse> {
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let fields = Arc::new(arrow_schema_to_pg_fields(
        &answer.output.schema,
        format,
        Some(options),
    )?);
    let each = fields.clone();
    let rows = answer
        .output
        .batches
        .into_iter()
        .flat_map(move |batch| encode_recordbatch(each.clone(), batch));
    Ok(QueryResponse::new(fields, futures_util::stream::iter(rows)))
}

/// Statements about the session rather than the data, answered by the library's hooks.
fn session_statement(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Set(_)
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
    )
}

/// Refuses `SET` of an engine setting (`datafusion.*`, any dotted name): only the client
/// settings Postgres clients send (`DateStyle`, `application_name`, ...) are kept.
#[derive(Debug)]
struct EngineSettings;

impl EngineSettings {
    fn refusal(statement: &Statement) -> Option<PgWireError> {
        let Statement::Set(Set::SingleAssignment { variable, .. }) = statement else {
            return None;
        };
        let name = variable.to_string();
        (name.contains('.') || name.to_ascii_lowercase().starts_with("datafusion")).then(|| {
            user_error(
                "ERROR",
                "42501",
                format!("the engine's settings cannot be changed here ({name})"),
            )
        })
    }
}

#[async_trait]
impl QueryHook for EngineSettings {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::refusal(statement).map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        Self::refusal(statement).map(Err)
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::refusal(statement).map(Err)
    }
}

/// Every statement the session hooks leave: planned and run in the engine's sandbox.
struct Sandboxed {
    state: AppState,
}

// The two hooks that run statements hand back the boxed future `Sandboxed::simple` or
// `Sandboxed::plan` made, instead of awaiting it in an `async fn` of their own: rustc proves
// an async trait method's future `Send` again under that method's own bounds, a walk through
// every type the door holds (the engine, DataFusion's session) that took about 12 s of
// bright-dashboards' compile for this impl alone; made in a function without bounds, it is
// proven once for the whole crate.
#[async_trait]
impl QueryHook for Sandboxed {
    fn handle_simple_query<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        statement: &'life1 Statement,
        _session_context: &'life2 SessionContext,
        client: &'life3 mut dyn HookClient,
    ) -> BoxFuture<'async_trait, Option<PgWireResult<Response>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        self.simple(statement, client).map(Some).boxed()
    }

    fn handle_extended_parse_query<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        statement: &'life1 Statement,
        _session_context: &'life2 SessionContext,
        client: &'life3 (dyn ClientInfo + Send + Sync),
    ) -> BoxFuture<'async_trait, Option<PgWireResult<LogicalPlan>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        self.plan(statement, client).map(Some).boxed()
    }

    fn handle_extended_query<'life0, 'life1, 'life2, 'life3, 'life4, 'life5, 'async_trait>(
        &'life0 self,
        _statement: &'life1 Statement,
        _logical_plan: &'life2 LogicalPlan,
        _params: &'life3 ParamValues,
        _session_context: &'life4 SessionContext,
        _client: &'life5 mut dyn HookClient,
    ) -> BoxFuture<'async_trait, Option<PgWireResult<Response>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        'life4: 'async_trait,
        'life5: 'async_trait,
        Self: 'async_trait,
    {
        // `Queries::do_query` runs prepared statements itself (it knows the formats the
        // client asked for); a statement reaching the library's own path is never run.
        Box::pin(std::future::ready(Some(Err(user_error(
            "ERROR",
            "XX000",
            "this statement cannot run here".into(),
        )))))
    }
}

impl Sandboxed {
    fn simple<'a>(
        &'a self,
        statement: &'a Statement,
        client: &'a dyn HookClient,
    ) -> BoxFuture<'a, PgWireResult<Response>> {
        Box::pin(async move {
            let who = signed_in(client)?;
            let engine = engine(&self.state)?;
            let limits = tool_limits(&self.state, &who);
            let sql = statement.to_string();
            let answer = run_with(
                &self.state,
                &who,
                &sql,
                DOOR,
                engine.analyst_sql(&sql, &limits),
            )
            .await
            .map_err(ran_error)?;
            Ok(Response::Query(rows(answer, &Format::UnifiedText, client)?))
        })
    }

    fn plan<'a>(
        &'a self,
        statement: &'a Statement,
        client: &'a (dyn ClientInfo + Send + Sync),
    ) -> BoxFuture<'a, PgWireResult<LogicalPlan>> {
        Box::pin(async move {
            let who = signed_in(client)?;
            let engine = engine(&self.state)?;
            let limits = tool_limits(&self.state, &who);
            let sql = statement.to_string();
            let started = Instant::now();
            let planned = engine.analyst_plan(&sql, &limits).await;
            // A prepared statement is in the audit log when it runs; one refused here never runs.
            if let Err(e) = &planned {
                record(
                    &self.state,
                    &who,
                    &sql,
                    DOOR,
                    None,
                    started,
                    outcome(Some(e)),
                );
            }
            planned.map_err(statement_error)
        })
    }
}

/// The parser of prepared statements: the statement's size is checked before it is parsed
/// (as every door does), and a text of several statements is refused rather than cut.
struct Checked {
    inner: Arc<Parser>,
}

type Prepared = <Parser as QueryParser>::Statement;

#[async_trait]
impl QueryParser for Checked {
    type Statement = Prepared;

    fn parse_sql<'life0, 'life1, 'life2, 'life3, 'async_trait, C>(
        &'life0 self,
        client: &'life1 C,
        sql: &'life2 str,
        types: &'life3 [Option<Type>],
    ) -> BoxFuture<'async_trait, PgWireResult<Option<Self::Statement>>>
    where
        C: ClientInfo + Unpin + Send + Sync + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        // The library's parse is a boxed future already; awaiting it in an `async fn` here
        // would have rustc prove the parser's whole type `Sync` under this method's bounds.
        if let Err(e) = precheck(sql, &Limits::default()).and_then(|()| one_statement(sql)) {
            return Box::pin(std::future::ready(Err(statement_error(e))));
        }
        self.inner.parse_sql(client, sql, types)
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(stmt, column_format)
    }
}

/// Simple and extended queries.
struct Queries {
    service: Arc<DfSessionService>,
    parser: Arc<Checked>,
    state: AppState,
}

// The handlers return the library's boxed futures, or one `Queries::execute` made, instead
// of awaiting them in `async fn`s of their own (see `Sandboxed`): under these methods'
// generic bounds rustc would prove the whole door `Sync` again, the largest share of
// bright-dashboards' compile.
#[async_trait]
impl SimpleQueryHandler for Queries {
    fn do_query<'life0, 'life1, 'life2, 'async_trait, C>(
        &'life0 self,
        client: &'life1 mut C,
        query: &'life2 str,
    ) -> BoxFuture<'async_trait, PgWireResult<Vec<Response>>>
    where
        C: ClientInfo
            + ClientPortalStore
            + Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync
            + 'async_trait,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        // Before the library parses it: a statement too big to parse safely is refused.
        if let Err(e) = precheck(query, &Limits::default()) {
            return Box::pin(std::future::ready(Err(statement_error(e))));
        }
        SimpleQueryHandler::do_query(self.service.as_ref(), client, query)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Checked;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    fn do_query<'life0, 'life1, 'life2, 'async_trait, C>(
        &'life0 self,
        client: &'life1 mut C,
        portal: &'life2 Portal<Self::Statement>,
        max_rows: usize,
    ) -> BoxFuture<'async_trait, PgWireResult<Response>>
    where
        C: ClientInfo
            + ClientPortalStore
            + Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync
            + 'async_trait,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let (sql, Some((statement, plan))) = &portal.statement.statement else {
            return Box::pin(std::future::ready(Ok(Response::EmptyQuery)));
        };
        if session_statement(statement) {
            return ExtendedQueryHandler::do_query(self.service.as_ref(), client, portal, max_rows);
        }
        let who = match signed_in(client) {
            Ok(who) => who,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let answer = self.execute(who, sql, plan, portal);
        let format = &portal.result_column_format;
        Box::pin(async move { Ok(Response::Query(rows(answer.await?, format, client)?)) })
    }
}

impl Queries {
    /// Runs a prepared statement's plan in the engine's sandbox.
    fn execute<'a>(
        &'a self,
        who: Arc<Client>,
        sql: &'a str,
        plan: &'a LogicalPlan,
        portal: &'a Portal<Prepared>,
    ) -> BoxFuture<'a, PgWireResult<Answer>> {
        Box::pin(async move {
            let engine = engine(&self.state)?;
            let limits = tool_limits(&self.state, &who);
            let params = parameters(portal, plan)?;
            run_with(
                &self.state,
                &who,
                sql,
                DOOR,
                engine.analyst_execute(plan.clone(), params, &limits),
            )
            .await
            .map_err(ran_error)
        })
    }
}

/// The values bound to a prepared statement's `$1`, `$2`, ..., typed as the plan infers
/// them where the client did not say.
fn parameters(portal: &Portal<Prepared>, plan: &LogicalPlan) -> PgWireResult<ParamValues> {
    let inferred = plan
        .get_parameter_types()
        .map_err(|e| statement_error(QueryError::DataFusion(e)))?;
    let mut ordered: Vec<(usize, Option<DataType>)> = inferred
        .into_iter()
        .filter_map(|(id, ty)| Some((id.strip_prefix('$')?.parse().ok()?, ty)))
        .collect();
    ordered.sort_by_key(|(n, _)| *n);
    let types: Vec<Option<&DataType>> = ordered.iter().map(|(_, ty)| ty.as_ref()).collect();
    datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters(portal, &types)
}

/// Signs a connection in: a cleartext password, checked against the people of the user store
/// (argon2 hashes) or the API tokens (SHA-256). From another machine only inside TLS. SCRAM is
/// not offered: pgwire's SCRAM needs each person's salted password, a key a login can be made
/// from, which bright would then have to keep beside the hash.
struct Login {
    state: AppState,
    manager: Arc<ConnectionManager>,
    parameters: DefaultServerParameterProvider,
    keys: RandomPidSecretKeyGenerator,
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                // The password is sent as it is (see `Login`): from another machine, only
                // inside TLS.
                if !client.is_secure() && !client.socket_addr().ip().is_loopback() {
                    return Err(user_error(
                        "FATAL",
                        "28000",
                        "from another machine this door takes passwords only over TLS \
                         (sslmode=require; the server needs --pg-tls-cert and --pg-tls-key)"
                            .into(),
                    ));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let password = password.into_password()?.password;
                let user = client.metadata().get(METADATA_USER).cloned();
                let who = sign_in(&self.state, user.unwrap_or_default(), password, DOOR)
                    .await
                    .map_err(|e| match e {
                        SignIn::Refused(why) => user_error("FATAL", "28P01", why),
                        SignIn::Failed(why) => user_error("FATAL", "XX000", why),
                    })?;
                let (pid, key) = self.keys.generate(client);
                client.set_pid_and_secret_key(pid, key.clone());
                // Registered for cancel requests (psql's Ctrl-C) for as long as it is open.
                let (handle, guard) = self.manager.register(pid, key);
                client.session_extensions().insert(handle);
                client.session_extensions().insert(guard);
                client.session_extensions().insert(who);
                finish_authentication(client, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
