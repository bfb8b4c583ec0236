//! An authenticating proxy in front of a real Prometheus, as a managed, multi-tenant
//! Prometheus (Mimir, Cortex, a cloud offering) stands in front of its queries: every query
//! must carry the tenant header and one accepted authorization, and an OAuth2 token
//! endpoint issues a token for the right client credentials.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::http::Server;

/// The tenant every query must name in `X-Scope-OrgID`.
pub const TENANT: &str = "tenant-a";
pub const BEARER_TOKEN: &str = "static-token";
pub const BASIC: (&str, &str) = ("weir", "s3cret");
pub const CLIENT: (&str, &str) = ("weir-client", "client-s3cret");
/// The token the token endpoint issues.
const ISSUED_TOKEN: &str = "issued-token";

/// Serves `/api/v1/query` (forwarded to Prometheus when authorized) and `/token`.
pub struct AuthProxy {
    pub addr: String,
    _server: Server,
}

impl AuthProxy {
    pub async fn start(prometheus: &str) -> AuthProxy {
        let router = Router::new()
            .route("/api/v1/query", get(query))
            .route("/token", post(token))
            .with_state(format!("http://{prometheus}"));
        let server = Server::start(router).await;
        AuthProxy {
            addr: server.addr.clone(),
            _server: server,
        }
    }
}

/// The `Authorization` value of HTTP Basic for `pair`, as reqwest writes it.
fn basic(pair: (&str, &str)) -> String {
    let request = reqwest::Client::new()
        .get("http://proxy.invalid")
        .basic_auth(pair.0, Some(pair.1))
        .build()
        .expect("a request");
    let value = &request.headers()[header::AUTHORIZATION];
    value.to_str().expect("ASCII").to_string()
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn query(
    State(prometheus): State<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let authorization = header(&headers, header::AUTHORIZATION);
    let accepted = [
        format!("Bearer {BEARER_TOKEN}"),
        basic(BASIC),
        format!("Bearer {ISSUED_TOKEN}"),
    ];
    if !accepted.iter().any(|a| a == authorization) {
        return (StatusCode::UNAUTHORIZED, "no valid credentials").into_response();
    }
    if header(&headers, "x-scope-orgid") != TENANT {
        return (StatusCode::UNAUTHORIZED, "no tenant").into_response();
    }
    let url = format!("{prometheus}/api/v1/query?{}", raw.unwrap_or_default());
    match reqwest::get(url).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let body = answer.text().await.unwrap_or_default();
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn token(headers: HeaderMap, body: String) -> Response {
    let client_ok = header(&headers, header::AUTHORIZATION) == basic(CLIENT);
    if !client_ok || !body.contains("grant_type=client_credentials") {
        return (StatusCode::UNAUTHORIZED, "bad client").into_response();
    }
    let issued = json!({"access_token": ISSUED_TOKEN, "token_type": "Bearer", "expires_in": 3600});
    axum::Json(issued).into_response()
}
