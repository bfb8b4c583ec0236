//! A webhook for analysis metrics that answers with the status and body the test sets.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;

use super::super::http::{Requests, Server};

/// What the webhook answers.
type Answer = Arc<Mutex<(u16, String)>>;

/// An HTTP endpoint for webhook metrics: answers every request with the status and body it
/// is set to, and keeps each request (request line, headers and body). Stops when dropped.
pub struct Webhook {
    pub url: String,
    answer: Answer,
    requests: Requests,
    _server: Server,
}

impl Webhook {
    /// Answers `status` with the body `ok`.
    pub async fn start(status: u16) -> Webhook {
        Webhook::answering(status, "ok").await
    }

    /// Answers `status` with `body` (for example `{"value": 0.2}`).
    pub async fn answering(status: u16, body: &str) -> Webhook {
        let answer: Answer = Arc::new(Mutex::new((status, body.to_string())));
        let requests = Requests::default();
        let router = Router::new()
            .fallback(answer_with)
            .with_state(answer.clone());
        let server = Server::start(requests.record(router)).await;
        Webhook {
            url: server.url("/check"),
            answer,
            requests,
            _server: server,
        }
    }

    pub fn set_status(&self, status: u16) {
        self.answer.lock().expect("the answer").0 = status;
    }

    /// Requests so far, each as its text.
    pub fn requests(&self) -> Vec<String> {
        self.requests.all().iter().map(|r| r.text()).collect()
    }
}

async fn answer_with(State(answer): State<Answer>) -> (StatusCode, String) {
    let (status, body) = answer.lock().expect("the answer").clone();
    (StatusCode::from_u16(status).expect("a valid status"), body)
}
