//! A webhook for analysis metrics that answers with the status the test sets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;

use super::super::http::{Requests, Server};

/// An HTTP endpoint for webhook metrics: answers every request with the status it is set
/// to, and keeps each request (request line, headers and body). Stops when dropped.
pub struct Webhook {
    pub url: String,
    status: Arc<AtomicU16>,
    requests: Requests,
    _server: Server,
}

impl Webhook {
    pub async fn start(status: u16) -> Webhook {
        let answer = Arc::new(AtomicU16::new(status));
        let requests = Requests::default();
        let router = Router::new()
            .fallback(answer_with)
            .with_state(answer.clone());
        let server = Server::start(requests.record(router)).await;
        Webhook {
            url: server.url("/check"),
            status: answer,
            requests,
            _server: server,
        }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests so far, each as its text.
    pub fn requests(&self) -> Vec<String> {
        self.requests.all().iter().map(|r| r.text()).collect()
    }
}

async fn answer_with(State(status): State<Arc<AtomicU16>>) -> (StatusCode, &'static str) {
    let status = StatusCode::from_u16(status.load(Ordering::SeqCst)).expect("a valid status");
    (status, "ok")
}
