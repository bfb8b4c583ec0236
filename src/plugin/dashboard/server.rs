//! The dashboard's HTTP side: the page and its assets (compiled into the binary), one
//! server-sent event stream per open view, and the actions.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use kube::Client;
use serde::Deserialize;
use serde_json::json;

use super::feed::Shared;
use super::guard::Guard;
use super::views::{detail_view, list_view};
use crate::plugin::actions;
use crate::plugin::args::ActionArgs;
use crate::plugin::client::Target;
use crate::plugin::error::Error;
use crate::release::{ManualAction, parse_action};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The page's only sources are the dashboard itself; no other site may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
    client: Client,
}

pub async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    guard: Guard,
    client: Client,
) -> Result<(), Error> {
    let app = App {
        shared,
        guard: Arc::new(guard),
        client,
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/ms/{namespace}/{name}", get(page))
        .route("/assets/app.js", get(|| asset(APP_JS, "text/javascript")))
        .route("/assets/app.css", get(|| asset(APP_CSS, "text/css")))
        .route("/api/list", get(list_stream))
        .route("/api/ms/{namespace}/{name}", get(detail_stream))
        .route("/api/ms/{namespace}/{name}/actions", post(act))
        .layer(middleware::from_fn_with_state(app.clone(), own_host_only))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

/// Refuses requests that name another host (DNS rebinding), and sets the headers that keep
/// the page from being framed or cached.
async fn own_host_only(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Err(refusal) = app.guard.check_host(request.headers()) {
        return (StatusCode::MISDIRECTED_REQUEST, refusal.to_string()).into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The one page; the script reads which view it is from the path.
async fn page(State(app): State<App>) -> Response {
    let html = INDEX_HTML.replace("{{TOKEN}}", app.guard.token());
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    namespace: Option<String>,
}

async fn list_stream(
    State(app): State<App>,
    Query(query): Query<ListQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let namespace = query.namespace.filter(|ns| !ns.is_empty());
    changes(app.shared, "list", move |shared| {
        serde_json::to_string(&list_view(&shared.board(), namespace.as_deref()))
    })
}

async fn detail_stream(
    State(app): State<App>,
    Path((namespace, name)): Path<(String, String)>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let key = (namespace, name);
    changes(app.shared, "detail", move |shared| {
        serde_json::to_string(&detail_view(&shared.board(), &key))
    })
}

/// A stream that sends `view` at once and again after every change that alters it.
fn changes<F>(
    shared: Arc<Shared>,
    kind: &'static str,
    view: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn(&Shared) -> serde_json::Result<String> + Send + Sync + 'static,
{
    let receiver = shared.subscribe();
    let view = Arc::new(view);
    let stream =
        futures::stream::unfold((receiver, None::<String>), move |(mut receiver, last)| {
            let shared = shared.clone();
            let view = view.clone();
            async move {
                loop {
                    if last.is_some() {
                        receiver.changed().await.ok()?;
                    }
                    let data = view(&shared)
                        .unwrap_or_else(|e| json!({"error": e.to_string()}).to_string());
                    if last.as_ref() != Some(&data) {
                        let event = Event::default().event(kind).data(data.clone());
                        return Some((Ok(event), (receiver, Some(data))));
                    }
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct ActionRequest {
    action: String,
}

/// Sets the same annotation as `kubectl weir <action>`, so Weir acts on it once; the page
/// sees the outcome through its stream.
async fn act(
    State(app): State<App>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refusal) = app.guard.check_action(&headers) {
        return answer(StatusCode::FORBIDDEN, refusal.to_string());
    }
    let action = serde_json::from_slice::<ActionRequest>(&body)
        .map(|request| parse_action(&request.action))
        .unwrap_or(ManualAction::Unknown(String::new()));
    if let ManualAction::Unknown(_) = action {
        return answer(StatusCode::BAD_REQUEST, "unknown action".into());
    }
    let target = Target {
        client: app.client.clone(),
        namespace,
    };
    let args = ActionArgs {
        name,
        no_wait: true,
        timeout: std::time::Duration::ZERO,
    };
    match actions::request(&target, action, &args).await {
        Ok(message) => answer(StatusCode::ACCEPTED, message),
        Err(error @ Error::NotFound { .. }) => answer(StatusCode::NOT_FOUND, error.to_string()),
        Err(error @ (Error::NoRelease { .. } | Error::NothingToRetry { .. })) => {
            answer(StatusCode::CONFLICT, error.to_string())
        }
        Err(error) => answer(StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

fn answer(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}
