//! A real browser for the dashboard tests: Debian's Chromium, headless, driven through its
//! chromedriver by WebDriver (fantoccini); and `kubectl weir dashboard` as a process.
//! `hack/install-browser.sh` installs both when missing; a test without them fails and
//! says so.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::eventually;
use super::http::free_port;

/// How long the page may take to show what the cluster already says.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(60);

/// chromedriver and a headless Chromium session; both end when dropped.
pub struct Browser {
    pub client: Client,
    _driver: Child,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(program("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let capabilities = json!({"goog:chromeOptions": {
            "binary": program("chromium"),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1400", "--lang=en-GB"]
        }});
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let what = format!("a WebDriver session from chromedriver at {url}");
        let client = eventually(PAGE_DEADLINE, &what, || async {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
                .ok()
        })
        .await;
        Browser {
            client,
            _driver: driver,
        }
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// The text of the first element `css` selects, once `holds` is true of it.
    pub async fn wait_text(&self, css: &str, what: &str, holds: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            let text = element.text().await.ok()?;
            holds(&text).then_some(text)
        })
        .await
    }

    /// An attribute of the first element `css` selects, once `holds` is true of it.
    pub async fn wait_attr(
        &self,
        css: &str,
        attribute: &str,
        what: &str,
        holds: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_for(what, || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            let value = element.attr(attribute).await.ok()??;
            holds(&value).then_some(value)
        })
        .await
    }

    /// Clicks the first element `css` selects once it is there and enabled.
    pub async fn click(&self, css: &str) {
        let element = self
            .wait_for(&format!("{css} to be clickable"), || async {
                let element = self.client.find(Locator::Css(css)).await.ok()?;
                element.is_enabled().await.ok()?.then_some(element)
            })
            .await;
        element.click().await.expect("click");
    }

    /// Polls `probe` until it gives a value, at most [`PAGE_DEADLINE`]; a failure shows the
    /// page as it was.
    async fn wait_for<T, F, Fut>(&self, what: &str, probe: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        // The outer deadline comes first, so the failure can show the page.
        let polled = eventually(PAGE_DEADLINE * 2, what, probe);
        match tokio::time::timeout(PAGE_DEADLINE, polled).await {
            Ok(value) => value,
            Err(_) => {
                let page = self.client.source().await.unwrap_or_default();
                panic!("the page did not show {what} within {PAGE_DEADLINE:?}; it was:\n{page}");
            }
        }
    }

    /// Saves a screenshot of the page under docs/images/ (the docs show what the tests saw).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("docs/images")
            .join(format!("{name}.png"));
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("docs/images");
        std::fs::write(&path, png).expect("write the screenshot");
    }
}

/// `program` on PATH, or a failure that says how to install it.
fn program(program: &str) -> String {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file());
    match found {
        Some(path) => path.to_string_lossy().into_owned(),
        None => panic!("{program} is not installed: run hack/install-browser.sh"),
    }
}

/// `kubectl weir dashboard` on a free loopback port; stops when dropped.
pub struct Dashboard {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    _process: Child,
}

impl Dashboard {
    /// The dashboard with `args` (for example `-n NS`), once it says where it listens.
    pub async fn start(args: &[&str]) -> Dashboard {
        let mut process = Command::new(env!("CARGO_BIN_EXE_kubectl-weir"))
            .arg("dashboard")
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start kubectl-weir dashboard");
        let stdout = process.stdout.take().expect("its stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(PAGE_DEADLINE, lines.next_line())
            .await
            .expect("the dashboard to say where it listens")
            .expect("read its stdout")
            .expect("a line");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Dashboard {
            url,
            _process: process,
        }
    }
}
