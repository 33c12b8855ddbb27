//! The Arrow Flight SQL door (`bright serve --flight-addr`): ADBC (`adbc_driver_flightsql`)
//! and other Flight SQL clients run analysts' SQL and fetch the answer as Arrow record
//! batches, without a text format in between.
//!
//! A client signs in with a Handshake carrying Basic credentials (a person's user name and
//! password, or any name and an API token with the `sql` scope), as the Postgres door does,
//! and gets a session token that its later calls carry as `authorization: Bearer …`; an API
//! token may also be sent as the bearer itself. A statement is planned in the engine's sandbox
//! when the client asks for its FlightInfo (so a refusal comes at once, with the answer's
//! schema otherwise) and run there when it fetches the ticket: read-only, limited, on the
//! analysts' threads, in the audit log, as on every door.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use base64::Engine;
use bright_engine::query::{Executor, QueryEngine, QueryError};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::AppState;
use crate::auth::{Client, TokenRefused};
use crate::routes::sql::{Ran, SignIn, outcome, record, run_with, sign_in, tool_limits};

/// How the door is named in the audit log.
const DOOR: &str = "flight";
/// A session token works this long after its Handshake.
const SESSION: Duration = Duration::from_secs(8 * 3600);
/// The server's threads' stacks, as the Postgres door's.
const STACK_BYTES: usize = 64 << 20;

/// Serves Flight SQL on `listener` until the returned future is dropped.
pub fn serve(
    listener: std::net::TcpListener,
    state: AppState,
) -> std::io::Result<impl Future<Output = std::io::Result<()>> + Send + 'static> {
    listener.set_nonblocking(true)?;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let executor = Executor::with_stack("bright-flight", threads, STACK_BYTES, true)?;
    let door = FlightDoor {
        state,
        sessions: Mutex::new(HashMap::new()),
    };
    Ok(async move {
        let serving = async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tonic::transport::Server::builder()
                .add_service(FlightServiceServer::new(door))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .map_err(std::io::Error::other)
        };
        executor
            .run(async move {
                serving
                    .await
                    .map_err(|e| QueryError::Stopped(e.to_string()))
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

struct FlightDoor {
    state: AppState,
    /// Signed-in clients by session token, and when each session ends.
    sessions: Mutex<HashMap<String, (Arc<Client>, Instant)>>,
}

/// Why a statement gave no answer, as a gRPC status.
fn status(e: Ran) -> Status {
    match e {
        Ran::Busy(message) => Status::resource_exhausted(message),
        Ran::Query(e @ QueryError::Refused(_)) => Status::permission_denied(e.to_string()),
        Ran::Query(e @ QueryError::Limit(_)) => Status::resource_exhausted(e.to_string()),
        Ran::Query(e @ (QueryError::DataFusion(_) | QueryError::Catalogue(_))) => {
            Status::invalid_argument(e.to_string())
        }
        Ran::Query(e) => Status::internal(e.to_string()),
    }
}

fn engine(state: &AppState) -> Result<Arc<QueryEngine>, Status> {
    crate::routes::sql::engine(state)
        .ok_or_else(|| Status::unavailable("this service has no query engine"))
}

impl FlightDoor {
    /// The client a call comes from: its session token, or an API token with the `sql` scope.
    fn client<T>(&self, request: &Request<T>) -> Result<Arc<Client>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated(
                    "sign in first (a Handshake with Basic credentials), or send an API \
                     token as authorization: Bearer",
                )
            })?;
        if let Ok(mut sessions) = self.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, (_, ends)| *ends > now);
            if let Some((client, _)) = sessions.get(token) {
                return Ok(client.clone());
            }
        }
        match self.state.clients().authenticate(token) {
            Ok(client) => match crate::routes::sql::not_allowed(&client) {
                None => Ok(client),
                Some(why) => Err(Status::permission_denied(why)),
            },
            Err(refused @ TokenRefused::Expired(_)) => {
                Err(Status::unauthenticated(refused.to_string()))
            }
            Err(TokenRefused::Unknown) => Err(Status::unauthenticated(
                "unknown or expired session: sign in again",
            )),
        }
    }
}

/// The user name and password of a Basic `authorization` value.
fn basic(request: &Request<Streaming<HandshakeRequest>>) -> Result<(String, String), Status> {
    let value = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(|| Status::unauthenticated("sign in with Basic credentials"))?;
    // Some clients (ADBC's driver) leave out the padding; both forms are read.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = lenient
        .decode(value.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Status::invalid_argument("the Basic credentials do not decode"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| Status::invalid_argument("Basic credentials are user:password"))?;
    Ok((user.to_string(), password.to_string()))
}

type Answers = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// What the Flight SQL calls do, each as a boxed future made here rather than in the
/// trait's `async fn`s: rustc proves an async trait method's future `Send` again under that
/// method's own bounds, a walk through every type the door holds (the engine, DataFusion's
/// session) that took about 16 s of bright-dashboards' compile; made in functions without
/// bounds, it is proven once for the whole crate.
impl FlightDoor {
    fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> BoxFuture<'_, Result<Response<Answers>, Status>> {
        Box::pin(async move {
            let (user, password) = basic(&request)?;
            let client = sign_in(&self.state, user, password, DOOR)
                .await
                .map_err(|e| match e {
                    SignIn::Refused(why) => Status::unauthenticated(why),
                    SignIn::Failed(why) => Status::internal(why),
                })?;
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| Status::internal(e.to_string()))?;
            let token: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            if let Ok(mut sessions) = self.sessions.lock() {
                sessions.insert(token.clone(), (Arc::new(client), Instant::now() + SESSION));
            }
            let answer = HandshakeResponse {
                protocol_version: 0,
                payload: token.clone().into(),
            };
            let mut response: Response<Answers> =
                Response::new(Box::pin(futures_util::stream::iter([Ok(answer)])));
            let bearer = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::internal("a session token that is not a header value"))?;
            response.metadata_mut().insert("authorization", bearer);
            Ok(response)
        })
    }

    fn plan_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> BoxFuture<'_, Result<Response<FlightInfo>, Status>> {
        Box::pin(async move {
            let client = self.client(&request)?;
            let engine = engine(&self.state)?;
            let limits = tool_limits(&self.state, &client);
            let started = Instant::now();
            let planned = engine.analyst_plan(&query.query, &limits).await;
            let plan = match planned {
                Ok(plan) => plan,
                Err(e) => {
                    // Refused before it runs: the audit log has it here.
                    let said = outcome(Some(&e));
                    record(
                        &self.state,
                        &client,
                        &query.query,
                        DOOR,
                        None,
                        started,
                        said,
                    );
                    return Err(status(Ran::Query(e)));
                }
            };
            let ticket = TicketStatementQuery {
                statement_handle: query.query.into_bytes().into(),
            };
            let endpoint =
                FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
            let info = FlightInfo::new()
                .try_with_schema(plan.schema().as_arrow())
                .map_err(|e| Status::internal(e.to_string()))?
                .with_endpoint(endpoint)
                .with_descriptor(request.into_inner());
            Ok(Response::new(info))
        })
    }

    fn run_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> BoxFuture<'_, Result<Response<<FlightDoor as FlightService>::DoGetStream>, Status>> {
        Box::pin(async move {
            let client = self.client(&request)?;
            let engine = engine(&self.state)?;
            let limits = tool_limits(&self.state, &client);
            let sql = String::from_utf8(ticket.statement_handle.to_vec())
                .map_err(|_| Status::invalid_argument("the ticket is not a statement"))?;
            let answer = run_with(
                &self.state,
                &client,
                &sql,
                DOOR,
                engine.analyst_sql(&sql, &limits),
            )
            .await
            .map_err(status)?;
            let batches = answer.output.batches.into_iter().map(Ok);
            let stream = FlightDataEncoderBuilder::new()
                .with_schema(answer.output.schema)
                .build(futures_util::stream::iter(batches))
                .map(|data| data.map_err(Status::from));
            let stream: <FlightDoor as FlightService>::DoGetStream = Box::pin(stream);
            Ok(Response::new(stream))
        })
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightDoor {
    type FlightService = FlightDoor;

    fn do_handshake<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> BoxFuture<'async_trait, Result<Response<Answers>, Status>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.handshake(request)
    }

    fn get_flight_info_statement<'life0, 'async_trait>(
        &'life0 self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> BoxFuture<'async_trait, Result<Response<FlightInfo>, Status>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.plan_statement(query, request)
    }

    fn do_get_statement<'life0, 'async_trait>(
        &'life0 self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> BoxFuture<'async_trait, Result<Response<<Self as FlightService>::DoGetStream>, Status>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.run_statement(ticket, request)
    }

    fn register_sql_info<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _id: i32,
        _result: &'life1 SqlInfo,
    ) -> BoxFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(()))
    }
}
