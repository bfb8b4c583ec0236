//! Credentials for metric sources, configured on the operator: the real Prometheus behind an
//! authenticating proxy that wants a tenant header and one of a bearer token, basic auth or
//! an OAuth2 token. The right set passes; a wrong or missing one is an inconclusive round
//! naming the cause; a namespace the operator does not allow a set is refused at the start.

use crate::release_analysis::{ERROR_RATE, prometheus_measuring};
use crate::support;

use serde_json::{Value, json};
use support::auth_proxy::{AuthProxy, BASIC, BEARER_TOKEN, CLIENT, TENANT};
use support::prometheus::{Exporter, Prometheus};
use support::release::{Harness, canary, condition};
use support::with_temp_ns;
use weir::api::Outcome;

const V2: &str = "registry.example/app:2";

/// Prometheus (no errors) behind the proxy, and the operator's credentials file, whose sets
/// are allowed in `ns` except `elsewhere`.
struct Behind {
    proxy: AuthProxy,
    file: std::path::PathBuf,
    _prometheus: (Exporter, Prometheus),
}

async fn behind_the_proxy(ns: &str) -> Behind {
    let prometheus = prometheus_measuring(0.0).await;
    let proxy = AuthProxy::start(&prometheus.1.addr).await;
    let tenant = json!({"X-Scope-OrgID": TENANT});
    let file = json!({"credentials": [
        {"name": "bearer", "namespaces": [ns], "bearerToken": BEARER_TOKEN, "headers": tenant},
        {"name": "basic", "namespaces": ["*"], "headers": tenant,
         "basicAuth": {"username": BASIC.0, "password": BASIC.1}},
        {"name": "oauth2", "namespaces": [format!("{}*", &ns[..4])], "headers": tenant,
         "oauth2": {"tokenURL": format!("http://{}/token", proxy.addr),
                    "clientID": CLIENT.0, "clientSecret": CLIENT.1, "scopes": ["metrics:read"]}},
        {"name": "wrong", "namespaces": [ns], "bearerToken": "not-the-token", "headers": tenant},
        {"name": "elsewhere", "namespaces": ["another-team"], "bearerToken": BEARER_TOKEN,
         "headers": tenant}
    ]});
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}-credentials.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
    Behind {
        proxy,
        file: path,
        _prometheus: prometheus,
    }
}

/// A canary judged every second by the error rate through each credential set in `sets`
/// (None: no credentials).
fn judged_through(sets: &[Option<&str>], inconclusive_limit: i32) -> Value {
    let metrics: Vec<Value> = sets
        .iter()
        .map(|set| {
            let mut prometheus = json!({"query": ERROR_RATE});
            if let Some(set) = set {
                prometheus["credentials"] = json!(set);
            }
            let name = set.unwrap_or("anonymous");
            json!({"name": name, "prometheus": prometheus, "max": 0.05})
        })
        .collect();
    let mut rollout = canary(json!([{"setWeight": 10}, {"pause": {"duration": "2s"}}]));
    rollout["analysis"] =
        json!({"interval": "1s", "inconclusiveLimit": inconclusive_limit, "metrics": metrics});
    json!({"rollout": rollout})
}

async fn operator_behind(client: &kube::Client, ns: &str, behind: &Behind, spec: Value) -> Harness {
    let address = format!("http://{}", behind.proxy.addr);
    let file = behind.file.display().to_string();
    let flags = [
        "--prometheus-address",
        address.as_str(),
        "--analysis-credentials",
        file.as_str(),
    ];
    Harness::start_with_flags(client, ns, "guarded", spec, &flags).await
}

#[tokio::test]
async fn each_kind_of_credential_reaches_prometheus_behind_an_authenticating_proxy() {
    with_temp_ns(|client, ns| async move {
        let behind = behind_the_proxy(&ns).await;
        let sets = [Some("bearer"), Some("basic"), Some("oauth2")];
        let h = operator_behind(&client, &ns, &behind, judged_through(&sets, 5)).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let started = h.wait_release(&[&stable]).await;
        let passed = h
            .wait("a round in which every set passed", |ms| {
                let release = ms.status.as_ref().and_then(|s| s.release.as_ref());
                let analysis = release.and_then(|r| r.analysis.as_ref());
                analysis.is_some_and(|a| {
                    sets.iter().flatten().all(|set| {
                        a.last
                            .iter()
                            .any(|m| m.metric == *set && m.outcome == Outcome::Passed)
                    })
                })
            })
            .await;
        let analysis = passed.status.unwrap().release.unwrap().analysis.unwrap();
        assert!(
            analysis.last.iter().all(|m| m.value == Some(0.0)),
            "{analysis:#?}"
        );
        h.wait_healthy_on(&started.revision).await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_or_missing_credential_is_an_inconclusive_round_naming_the_cause() {
    with_temp_ns(|client, ns| async move {
        let behind = behind_the_proxy(&ns).await;
        let spec = judged_through(&[Some("wrong"), None], 600);
        let h = operator_behind(&client, &ns, &behind, spec).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        h.wait_release(&[&stable]).await;
        let address = &behind.proxy.addr;
        let wrong = format!(
            "wrong: Prometheus at http://{address} answered 401: credential set \"wrong\" was not accepted"
        );
        let missing = format!(
            "anonymous: Prometheus at http://{address} answered 401: it asks for credentials"
        );
        let told = h
            .wait("inconclusive rounds naming both causes", |ms| {
                let release = ms.status.as_ref().and_then(|s| s.release.as_ref());
                let analysis = release.and_then(|r| r.analysis.as_ref());
                analysis.is_some_and(|a| {
                    let says = |text: &str| {
                        a.last.iter().any(|m| {
                            m.outcome == Outcome::Inconclusive
                                && m.message.as_deref().is_some_and(|s| s.starts_with(text))
                        })
                    };
                    says(&wrong) && says(&missing)
                })
            })
            .await;
        let status = told.status.unwrap();
        assert_eq!(status.release.unwrap().weight, 10, "the release waits");
        assert_eq!(status.aborted_revision, None);
    })
    .await;
}

#[tokio::test]
async fn a_set_the_namespace_may_not_use_holds_the_release_back_with_a_condition() {
    with_temp_ns(|client, ns| async move {
        let behind = behind_the_proxy(&ns).await;
        let spec = judged_through(&[Some("elsewhere")], 5);
        let h = operator_behind(&client, &ns, &behind, spec).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image(V2).await;
        let held = h.wait_degraded("CredentialsRefused").await;
        let message = &condition(&held, "Degraded").unwrap().message;
        assert!(
            message.contains(&format!(
                "metric elsewhere: namespace {ns} may not use credential set \"elsewhere\""
            )),
            "{message}"
        );
        let status = held.status.unwrap();
        assert_eq!(status.stable_revision, Some(stable));
        assert_eq!(status.candidate_revision, None);
        let events = h.events().await;
        assert!(
            events
                .iter()
                .any(|(_, reason, _)| reason == "CredentialsRefused"),
            "{events:?}"
        );
    })
    .await;
}
