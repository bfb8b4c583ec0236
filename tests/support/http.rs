//! HTTP for the tests on the stack Weir itself uses: servers are axum routers on a free
//! loopback port, stopped when dropped; the client is reqwest. A recorder keeps every
//! request a server received, and a listener can refuse or hold connections, for servers
//! that fail on demand.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the client waits for an answer: a server that holds a request longer counts as
/// not answering.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Request bodies larger than this are cut (the tests' servers receive small JSON bodies).
const MAX_BODY: usize = 1 << 20;

/// An HTTP server serving a router; stops accepting when dropped.
pub struct Server {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `router` on a free loopback port.
    pub async fn start(router: Router) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        Server::on(listener, router)
    }

    /// Serves `router` on the connections `listener` hands over.
    pub fn on<L>(listener: L, router: Router) -> Server
    where
        L: Listener<Addr = SocketAddr>,
    {
        let addr = listener
            .local_addr()
            .expect("the listener's address")
            .to_string();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("serve HTTP (it never fails)");
        });
        Server { addr, task }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request as a server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// The request as text: request line, headers, a blank line, the body.
    pub fn text(&self) -> String {
        let headers: String = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        format!(
            "{} {} HTTP/1.1\r\n{headers}\r\n{}",
            self.method, self.uri, self.body
        )
    }
}

/// Every request the routers it [`records`](Requests::record) received, in arrival order;
/// clones share the record.
#[derive(Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<Received>>>);

impl Requests {
    /// `router`, keeping each request here before it is handled (so a handler that never
    /// answers still leaves its request behind).
    pub fn record(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), keep))
    }

    pub fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    pub fn last(&self) -> Option<Received> {
        self.0.lock().unwrap().last().cloned()
    }
}

async fn keep(State(requests): State<Requests>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    requests.0.lock().unwrap().push(received);
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The client every helper here uses. Each test runs its own tokio runtime and a pooled
/// connection belongs to the runtime that opened it, so none is kept for the next request;
/// no proxy from the environment applies to loopback servers.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(TIMEOUT)
            .build()
            .expect("an HTTP client")
    });
    &CLIENT
}

/// Status and body of a GET of `path` (with its query) at `addr` (`host:port`), or None
/// when nothing answers yet (or within [`TIMEOUT`]).
pub async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    fetch(&format!("http://{addr}{path}")).await
}

/// Status and body of a GET of `url`, or None when nothing answers.
pub async fn fetch(url: &str) -> Option<(u16, String)> {
    let response = client().get(url).send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.text().await.ok()?;
    Some((status, body))
}

/// A loopback port nothing listens on (at the moment of the call).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A router that passes every request on to `target` (`host:port`) and its answer back:
/// method, path and query, content type and body. 502 when `target` does not answer.
pub fn proxy_to(target: &str) -> Router {
    Router::new()
        .fallback(forward)
        .with_state(Arc::new(target.to_string()))
}

async fn forward(State(target): State<Arc<String>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut forwarded = client()
        .request(parts.method, format!("http://{target}{path}"))
        .body(body);
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        forwarded = forwarded.header(header::CONTENT_TYPE, content_type);
    }
    let Ok(answer) = forwarded.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let Ok(body) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = (status, body).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}

/// What a [`FaultyListener`] does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serves them.
    Up,
    /// Closes them at once, as a crashed server would.
    Down,
    /// Accepts them and never answers.
    Hang,
}

/// A loopback listener whose connections follow the [`Mode`] a test sets: served while Up,
/// closed at once while Down, held unanswered while Hang (until the mode changes). A
/// connection served while Up is cut when the mode changes, so a pooled keep-alive
/// connection does not outlive an outage; dropping the sender cuts them all.
pub struct FaultyListener {
    inner: TcpListener,
    mode: watch::Receiver<Mode>,
}

impl FaultyListener {
    pub async fn bind(mode: watch::Receiver<Mode>) -> FaultyListener {
        let inner = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        FaultyListener { inner, mode }
    }
}

impl Listener for FaultyListener {
    type Io = Cuttable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Cuttable, SocketAddr) {
        loop {
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let mode = *self.mode.borrow();
            match mode {
                Mode::Up => return (Cuttable::new(stream, self.mode.clone()), addr),
                Mode::Down => drop(stream),
                Mode::Hang => {
                    let mut mode = self.mode.clone();
                    tokio::spawn(async move {
                        let _held = stream;
                        let _ = mode.wait_for(|m| *m != Mode::Hang).await;
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that fails every read and write once its listener's mode leaves Up, which
/// makes the server close it.
pub struct Cuttable {
    stream: TcpStream,
    left_up: Pin<Box<dyn Future<Output = ()> + Send>>,
    cut: bool,
}

impl Cuttable {
    fn new(stream: TcpStream, mut mode: watch::Receiver<Mode>) -> Cuttable {
        let left_up = Box::pin(async move {
            let _ = mode.wait_for(|m| *m != Mode::Up).await;
        });
        Cuttable {
            stream,
            left_up,
            cut: false,
        }
    }

    /// True once the mode left Up; otherwise `cx` is woken when it does.
    fn is_cut(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.cut && self.left_up.as_mut().poll(cx).is_ready() {
            self.cut = true;
        }
        self.cut
    }
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "cut: the server went down")
}

impl AsyncRead for Cuttable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_cut(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cuttable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_cut(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
