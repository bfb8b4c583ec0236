//! `kubectl weir dashboard` in a real browser (headless Chromium through WebDriver): the list
//! follows the cluster live, a release's timeline and weight plot advance step by step, a
//! promote clicked in the page moves the release exactly one step, an abort clicked shows
//! why, and a page from another origin can neither act nor read. The screenshots in
//! docs/dashboard.md are taken here.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::{get, post};
use kube::ResourceExt;
use serde_json::{Value, json};
use support::browser::{Browser, Dashboard};
use support::http::{self, Server};
use support::release::{ACTION, Harness, canary};
use support::with_temp_ns;
use weir::api::Phase;

const V2: &str = "registry.example/app:2";
/// The in-test metric webhook listens on loopback, which the operator must be told it may reach.
const LOOPBACK: [&str; 2] = ["--analysis-allowed-hosts", "127.0.0.1"];

fn six_steps() -> Value {
    json!([
        {"setWeight": 20}, {"pause": {}},
        {"setWeight": 40}, {"pause": {}},
        {"setWeight": 60}, {"pause": {}}
    ])
}

/// A metric webhook whose answers wander between 0.010 and 0.025, inside a bound of 0.05.
async fn error_rate_webhook() -> Server {
    let calls = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/error-rate",
        post(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { axum::Json(json!({"value": 0.010 + 0.005 * (n % 4) as f64})) }
        }),
    );
    Server::start(router).await
}

#[tokio::test]
async fn the_list_shows_microservices_live_filtered_by_namespace() {
    with_temp_ns(|client, ns| async move {
        let h = Harness::start(&client, &ns, "web", json!({"rollout": canary(six_steps())})).await;
        // Every namespace the user may see (the test cluster's admin sees them all).
        let dashboard = Dashboard::start(&[]).await;
        let browser = Browser::start().await;
        browser
            .open(&format!("{}/?namespace={ns}", dashboard.url))
            .await;
        let row = format!(r#"tr[data-name="{ns}/web"]"#);
        browser
            .wait_text(&row, "web as Healthy", |t| t.contains("Healthy"))
            .await;
        browser
            .wait_text(
                "#namespace-filter option:checked",
                "the namespace chosen",
                |t| t == ns,
            )
            .await;

        h.set_image(V2).await;
        let live = browser
            .wait_text(&row, "the release at step 2 of 6, weight 20%", |t| {
                t.contains("2/6") && t.contains("20%") && t.contains("Paused")
            })
            .await;
        assert!(
            live.contains("ReleaseStarted") || live.contains("blue"),
            "{live}"
        );
        let rows = browser
            .client
            .find_all(fantoccini::Locator::Css("#microservices tbody tr"))
            .await
            .expect("rows");
        for row in rows {
            let name = row
                .attr("data-name")
                .await
                .expect("data-name")
                .unwrap_or_default();
            assert!(
                name.starts_with(&format!("{ns}/")),
                "{name} shown under {ns}"
            );
        }
        browser.screenshot("dashboard-list").await;
    })
    .await;
}

#[tokio::test]
async fn a_release_advances_in_the_page_and_its_buttons_act_once() {
    let webhook = error_rate_webhook().await;
    let url = webhook.url("/error-rate");
    with_temp_ns(move |client, ns| async move {
        let mut rollout = canary(six_steps());
        rollout["analysis"] = json!({"interval": "1s", "metrics": [
            {"name": "error-rate", "webhook": {"url": url, "timeoutSeconds": 5}, "max": 0.05}
        ]});
        let h =
            Harness::start_with_flags(&client, &ns, "web", json!({"rollout": rollout}), &LOOPBACK)
                .await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let revision = h.wait_release(&[&stable]).await.revision;
        h.wait_paused_at(1).await;

        let dashboard = Dashboard::start(&["-n", &ns]).await;
        let browser = Browser::start().await;
        browser
            .open(&format!("{}/ms/{ns}/web", dashboard.url))
            .await;
        let current = r#"#timeline li[aria-current="step"]"#;
        browser
            .wait_text(current, "step 2 as the current step", |t| {
                t.contains("Step 2: pause until promoted") && t.contains("started")
            })
            .await;
        browser
            .wait_attr("#weight-plot", "data-applied", "weight 20 applied", |v| {
                v == "20"
            })
            .await;
        browser
            .wait_attr("#weight-plot", "data-verified", "weight 20 verified", |v| {
                v == "20"
            })
            .await;
        browser
            .wait_attr(
                r#"figure[data-metric="error-rate"]"#,
                "data-measurements",
                "a few measurements of error-rate",
                |v| v.parse::<u32>().is_ok_and(|n| n >= 2),
            )
            .await;

        // A promote clicked in the page ends this pause and no other.
        browser.click(r#"button[data-action="promote"]"#).await;
        browser
            .wait_text("#confirm-text", "the confirmation", |t| {
                t.contains("End the current step of web")
            })
            .await;
        browser.click("#confirm-ok").await;
        browser
            .wait_text("#action-result", "the request accepted", |t| {
                t.contains("requested promote@")
            })
            .await;
        let ms = h.wait_paused_at(3).await;
        let release = ms.status.clone().unwrap().release.unwrap();
        let started: Vec<i32> = release.step_history.iter().map(|s| s.step).collect();
        assert_eq!(started, [0, 1, 2, 3], "one promote, one pause ended");
        assert!(
            !ms.annotations().contains_key(ACTION),
            "the action was consumed"
        );
        let promotes = h
            .events()
            .await
            .into_iter()
            .filter(|(_, reason, _)| reason == "PromoteRequested")
            .count();
        assert_eq!(promotes, 1, "Weir acted on the click once");
        browser
            .wait_text(current, "step 4 as the current step", |t| {
                t.contains("Step 4: pause until promoted") && t.contains("started")
            })
            .await;
        let done = browser
            .wait_text(
                "#timeline",
                "steps 1 to 3 done, with their start times",
                |t| t.matches("started").count() == 4,
            )
            .await;
        assert!(done.contains("Step 3: setWeight 40 (done)"), "{done}");
        browser
            .wait_attr("#weight-plot", "data-verified", "weight 40 verified", |v| {
                v == "40"
            })
            .await;
        let points = browser
            .wait_attr(
                "#weight-plot",
                "data-points",
                "the weight's changes",
                |_| true,
            )
            .await;
        assert!(points.parse::<u32>().unwrap() >= 2, "{points} points");
        browser
            .wait_text(r#"#slot-table"#, "both slots with ready pods", |t| {
                t.contains("active")
                    && t.lines()
                        .any(|l| l.contains("candidate") && l.contains(V2) && !l.contains(" 0 of "))
            })
            .await;
        browser.screenshot("dashboard-release").await;

        // An abort clicked in the page: traffic back to stable, and the page says why.
        browser.click(r#"button[data-action="abort"]"#).await;
        browser.click("#confirm-ok").await;
        let failure = browser
            .wait_text("#failure", "why the release failed", |t| {
                t.contains("Aborted")
            })
            .await;
        assert!(failure.contains("by hand"), "{failure}");
        let ms = h
            .wait("the release aborted", |ms| {
                ms.status
                    .as_ref()
                    .and_then(|s| s.aborted_revision.as_deref())
                    == Some(&revision)
            })
            .await;
        assert_eq!(ms.status.unwrap().phase, Some(Phase::Degraded));
        browser
            .wait_text("#phase", "the phase Degraded", |t| t.contains("Degraded"))
            .await;
        browser
            .wait_attr(
                "#weight-plot",
                "data-verified",
                "traffic back on stable",
                |v| v == "0",
            )
            .await;
        browser.screenshot("dashboard-aborted").await;
    })
    .await;
}

#[tokio::test]
async fn a_page_from_another_origin_can_neither_act_nor_read() {
    with_temp_ns(|client, ns| async move {
        let h = Harness::start(&client, &ns, "web", json!({"rollout": canary(six_steps())})).await;
        h.set_image(V2).await;
        h.wait_paused_at(1).await;
        let dashboard = Dashboard::start(&["-n", &ns]).await;
        let actions = format!("{}/api/ms/{ns}/web/actions", dashboard.url);

        // Another site the user has open tries every way a page can reach the dashboard.
        let attack = foreign_page(&dashboard.url, &actions);
        let foreign = Server::start(Router::new().route(
            "/",
            get(move || async move { axum::response::Html(attack) }),
        ))
        .await;
        let browser = Browser::start().await;
        browser.open(&foreign.url("/")).await;
        let outcome = browser
            .wait_text("#outcome", "the foreign page's attempts", |t| {
                t.lines().count() == 3
            })
            .await;
        assert!(outcome.contains("simple post: sent"), "{outcome}");
        assert!(outcome.contains("post with a token: blocked"), "{outcome}");
        assert!(outcome.contains("read the page: blocked"), "{outcome}");

        // The same requests, as a script outside a browser would send them.
        let page = http::client()
            .get(format!("{}/", dashboard.url))
            .send()
            .await
            .expect("the page")
            .text()
            .await
            .expect("its text");
        let token = page
            .split(r#"name="weir-token" content=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the token in the page")
            .to_string();
        let post = |origin: &str, token: &str| {
            http::client()
                .post(&actions)
                .header("origin", origin)
                .header("x-weir-token", token)
                .header("content-type", "application/json")
                .body(r#"{"action":"abort"}"#)
                .send()
        };
        let own = dashboard.url.clone();
        let foreign_origin = foreign.url("").trim_end_matches('/').to_string();
        assert_eq!(post(&foreign_origin, &token).await.unwrap().status(), 403);
        assert_eq!(post(&own, "guessed").await.unwrap().status(), 403);
        let rebound = http::client()
            .get(format!("{}/", dashboard.url))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(rebound.status(), 421, "a DNS-rebinding host is refused");

        let ms = h.ms().await;
        assert!(!ms.annotations().contains_key(ACTION), "no action was set");
        let release = ms.status.unwrap().release.expect("the release goes on");
        assert_eq!((release.step_index, release.returning), (1, None));

        // The page's own origin with the token may act.
        assert_eq!(post(&own, &token).await.unwrap().status(), 202);
        h.wait_degraded("Aborted").await;
    })
    .await;
}

/// A page that tries a plain cross-site POST (which a browser sends without asking), a POST
/// with the token header (which needs the dashboard's consent first), and a read of the
/// dashboard's page (to steal the token), and lists what happened.
fn foreign_page(dashboard: &str, actions: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><pre id="outcome"></pre><script>
const out = (line) => document.getElementById('outcome').textContent += line + '\n';
const body = JSON.stringify({{action: 'abort'}});
fetch('{actions}', {{method: 'POST', mode: 'no-cors', headers: {{'Content-Type': 'text/plain'}}, body}})
  .then(() => out('simple post: sent'), (e) => out('simple post: blocked ' + e))
  .then(() => fetch('{actions}', {{method: 'POST', headers: {{'Content-Type': 'application/json', 'X-Weir-Token': 'x'}}, body}}))
  .then(() => out('post with a token: answered'), (e) => out('post with a token: blocked ' + e))
  .then(() => fetch('{dashboard}/'))
  .then((r) => r.text().then((t) => out('read the page: read ' + t.length)), (e) => out('read the page: blocked ' + e));
</script>"#
    )
}
