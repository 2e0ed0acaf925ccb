//! The HTTP side of the control API: routes, handlers, the bearer-token check of the TCP
//! listener, and JSON for every answer, errors included.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State as Extract};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, oneshot};

use super::error::ApiError;
use super::listen::{Guarded, Limits};
use super::model::{ConfigView, Leases, Pools, Released, ServerView, WorkerView, hex};
use super::{BLOCKING_REQUESTS, MAX_BODY, Sources, leases, params, uptime};

/// What every handler shares.
pub(super) struct State {
    sources: Sources,
    started: SystemTime,
    /// Turns for blocking work.
    blocking: Semaphore,
}

impl State {
    pub(super) fn new(sources: Sources) -> Self {
        Self {
            sources,
            started: SystemTime::now(),
            blocking: Semaphore::new(BLOCKING_REQUESTS),
        }
    }

    /// Runs `work` on the blocking pool, a few at once.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&State) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _turn = self
            .blocking
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the server is stopping"))?;
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|_| ApiError::internal("the request's work failed"))?
    }
}

/// A listener, with the bearer token a TCP one requires.
pub(super) enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener, Arc<[u8]>),
}

/// Serves every listener until `stopped`.
pub(super) async fn serve(
    listeners: Vec<Listener>,
    state: Arc<State>,
    limits: Limits,
    stopped: oneshot::Receiver<()>,
) {
    let (stop_all, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let mut stop = stop_all.subscribe();
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        match listener {
            Listener::Unix(listener) => {
                let app = router(Arc::clone(&state), None);
                tasks.spawn(async move {
                    if let Err(error) = axum::serve(Guarded::new(listener, limits), app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(%error, "the control socket failed");
                    }
                });
            }
            Listener::Tcp(listener, token) => {
                let app = router(Arc::clone(&state), Some(token));
                tasks.spawn(async move {
                    if let Err(error) = axum::serve(Guarded::new(listener, limits), app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(%error, "the control TCP listener failed");
                    }
                });
            }
        }
    }
    let _ = stopped.await;
    let _ = stop_all.send(());
    // Connections still open get a moment, then the runtime drops them.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// The routes, behind the bearer-token check when `token` is given.
pub(super) fn router(state: Arc<State>, token: Option<Arc<[u8]>>) -> Router {
    let router = Router::new()
        .route("/v1/leases", get(get_leases).delete(delete_lease))
        .route("/v1/pools", get(get_pools))
        .route(
            "/v1/reservations",
            get(get_reservations)
                .post(add_reservation)
                .delete(remove_reservation),
        )
        .route("/v1/server", get(get_server))
        .route("/v1/config", get(get_config))
        .route("/v1/reload", post(reload))
        .route("/v1/reconfigure", post(reconfigure))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    match token {
        Some(token) => router.layer(middleware::from_fn(move |request, next| {
            authorize(Arc::clone(&token), request, next)
        })),
        None => router,
    }
}

/// Lets a request through only with `Authorization: Bearer TOKEN`, compared in constant time.
async fn authorize(token: Arc<[u8]>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if bool::from(given.ct_eq(&token)) {
        next.run(request).await
    } else {
        axum::response::IntoResponse::into_response(ApiError::unauthorized())
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// The query's pairs, or a JSON error about it.
fn pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|rejection| ApiError::invalid("query", rejection.body_text()))
}

/// The body, at most [`MAX_BODY`] bytes, as JSON (an empty body is `null`).
async fn json_body(body: Body) -> Result<Value, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY} bytes (or was cut off)"),
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::invalid(
            "body",
            format!(
                "is not JSON: {error} (line {}, column {})",
                error.line(),
                error.column()
            ),
        )
    })
}

async fn get_leases(
    Extract(state): Extract<Arc<State>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer<Leases> {
    let query = params::lease_query(&pairs(query)?)?;
    let leases = state
        .blocking(move |state| {
            let engine = (state.sources.engine)();
            leases::lookup(&engine, &query, (state.sources.clock)())
        })
        .await?;
    Ok(Json(leases))
}

async fn delete_lease(
    Extract(state): Extract<Arc<State>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer<Released> {
    let query = params::release_query(&pairs(query)?)?;
    let released = state
        .blocking(move |state| {
            let engine = (state.sources.engine)();
            let mut events = (state.sources.events)();
            let released =
                leases::release(&engine, query, (state.sources.clock)(), events.as_mut())?;
            tracing::info!(lease = %released.lease, duid = %released.duid, iaid = released.iaid, "lease released through the control API");
            Ok(released)
        })
        .await?;
    Ok(Json(Released { released }))
}

async fn get_pools(Extract(state): Extract<Arc<State>>) -> Answer<Pools> {
    let pools = state
        .blocking(|state| {
            let engine = (state.sources.engine)();
            Ok(leases::pools(&engine, (state.sources.clock)()))
        })
        .await?;
    Ok(Json(pools))
}

async fn get_reservations(Extract(state): Extract<Arc<State>>) -> Answer<Value> {
    let answer = state
        .blocking(|state| state.sources.hooks.reservations())
        .await?;
    Ok(Json(answer))
}

async fn add_reservation(Extract(state): Extract<Arc<State>>, body: Body) -> Answer<Value> {
    let reservation = json_body(body).await?;
    if !reservation.is_object() {
        return Err(ApiError::invalid(
            "body",
            "a reservation is a JSON object with the keys of a [[reservation]] table",
        ));
    }
    let answer = state
        .blocking(move |state| state.sources.hooks.add_reservation(reservation))
        .await?;
    Ok(Json(answer))
}

async fn reconfigure(Extract(state): Extract<Arc<State>>, body: Body) -> Answer<Value> {
    let request = json_body(body).await?;
    if !request.is_object() {
        return Err(ApiError::invalid(
            "body",
            "expected a JSON object with duid and msg (renew, rebind or information-request)",
        ));
    }
    let answer = state
        .blocking(move |state| state.sources.hooks.reconfigure(request))
        .await?;
    Ok(Json(answer))
}

async fn remove_reservation(
    Extract(state): Extract<Arc<State>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Body,
) -> Answer<Value> {
    let pairs = pairs(query)?;
    let mut reservation = json_body(body).await?;
    if reservation.is_null() {
        // `DELETE /v1/reservations?duid=...`: the query's pairs as the object.
        if pairs.len() > params::MAX_PARAMS {
            return Err(ApiError::invalid("query", "has too many parameters"));
        }
        reservation = Value::Object(
            pairs
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        );
    } else if !pairs.is_empty() {
        return Err(ApiError::invalid(
            "query",
            "name the reservation in the body or in the query, not both",
        ));
    }
    if reservation
        .as_object()
        .is_none_or(|object| object.is_empty())
    {
        return Err(ApiError::invalid(
            "body",
            "name the reservation to remove: {\"duid\": ...} or {\"hw-address\": ...}",
        ));
    }
    let answer = state
        .blocking(move |state| state.sources.hooks.remove_reservation(reservation))
        .await?;
    Ok(Json(answer))
}

async fn reload(Extract(state): Extract<Arc<State>>, body: Body) -> Answer<Value> {
    if !json_body(body).await?.is_null() {
        return Err(ApiError::invalid(
            "body",
            "a reload takes no body: it reads the configuration file again",
        ));
    }
    let answer = state.blocking(|state| state.sources.hooks.reload()).await?;
    Ok(Json(answer))
}

async fn get_server(Extract(state): Extract<Arc<State>>) -> Answer<ServerView> {
    let sources = &state.sources;
    let engine = (sources.engine)();
    let (started, uptime) = uptime(state.started);
    let sum = |counters: &[std::sync::atomic::AtomicU64]| -> u64 {
        counters
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .sum()
    };
    let mut workers = Vec::with_capacity(sources.workers.len());
    for (datapath, stats) in &sources.workers {
        let index = workers
            .iter()
            .filter(|worker: &&WorkerView| worker.datapath == *datapath)
            .count();
        workers.push(WorkerView {
            datapath: (*datapath).to_owned(),
            index,
            received: sum(&stats.received),
            sent: sum(&stats.sent),
            dropped: sum(&stats.dropped),
            bad_frames: stats.bad_frames.load(Ordering::Relaxed),
            send_failures: stats.send_failures.load(Ordering::Relaxed),
            handed_out: stats.handoff_out.load(Ordering::Relaxed),
            handed_in: stats.handoff_in.load(Ordering::Relaxed),
            handoff_dropped: stats.handoff_full.load(Ordering::Relaxed)
                + stats.handoff_stopped.load(Ordering::Relaxed),
        });
    }
    Ok(Json(ServerView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
        started,
        uptime,
        config_file: sources.config_file.display().to_string(),
        duid: hex(&engine.config().server.duid),
        links: engine.config().links.len(),
        leases: engine.table().len(),
        datapath: sources.datapath.clone(),
        xdp: (sources.xdp)(),
        workers,
        journal: (sources.journal)(),
    }))
}

async fn get_config(Extract(state): Extract<Arc<State>>) -> Answer<ConfigView> {
    let engine = (state.sources.engine)();
    Ok(Json(ConfigView {
        file: state.sources.config_file.display().to_string(),
        toml: engine.config().to_toml_string(),
    }))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::about(
        StatusCode::NOT_FOUND,
        "path",
        format!(
            "{} is not an endpoint (see /v1/leases, /v1/pools, /v1/reservations, /v1/server, \
             /v1/config, /v1/reload)",
            shown_path(&request)
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::about(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        format!(
            "{} is not served on {}",
            request.method(),
            shown_path(&request)
        ),
    )
}

/// The request's path, cut to 100 bytes for messages.
fn shown_path(request: &Request) -> String {
    let path = request.uri().path();
    match path.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &path[..cut]),
        None => path.to_owned(),
    }
}
