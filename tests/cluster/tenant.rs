//! Tenant safety: a Microservice can make the operator reach only the hosts the operator
//! allows, and route only through its own Services.

use crate::support;

use gateway_api::httproutes::HttpRoute;
use kube::Api;
use serde_json::json;
use support::release::{Harness, Webhook, canary};
use support::with_temp_ns;

#[tokio::test]
async fn a_webhook_outside_the_allowed_hosts_is_refused_and_never_called() {
    let webhook = Webhook::start(200).await;
    let url = webhook.url.clone();
    with_temp_ns(move |client, ns| async move {
        let mut rollout = canary(json!([{"setWeight": 10}, {"analysis": {}}]));
        rollout["analysis"] = json!({"interval": "1s", "metrics": [
            {"name": "exfiltrate", "webhook": {"url": url, "timeoutSeconds": 2}}
        ]});
        // The operator keeps its default allow-list: in-cluster Services only.
        let h = Harness::start(&client, &ns, "tenant", json!({"rollout": rollout})).await;
        let stable = h.status().await.stable_revision.unwrap();
        h.set_image("registry.example/app:2").await;
        h.wait_release(&[&stable]).await;
        let ms = h.wait_degraded("AnalysisFailed").await;
        let message = ms.status.unwrap().message.unwrap_or_default();
        assert!(
            message.contains("is not allowed") && message.contains("127.0.0.1"),
            "the condition says why: {message}"
        );
        assert!(
            webhook.requests().is_empty(),
            "a refused host must not be called: {:?}",
            webhook.requests()
        );
    })
    .await;
}

#[tokio::test]
async fn a_route_through_another_service_is_refused() {
    with_temp_ns(|client, ns| async move {
        support::install_crds(&client).await;
        let _operator = support::operator::Operator::start(&ns, "tenant-0", &[]).await;
        let spec = json!({"rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {
            "parentRefs": [{"group": "", "kind": "Service", "name": "payments"}]}}}});
        let ms = support::microservice::microservice("shop", spec);
        let api = support::microservice::create(&client, &ns, &ms).await;
        let degraded = support::microservice::wait_phase(
            &api,
            "shop",
            weir::api::Phase::Degraded,
            "ForeignParent",
            support::release::DEADLINE,
        )
        .await;
        let status = degraded.status.unwrap();
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Degraded" && c.reason == "ForeignParent"),
            "{status:?}"
        );
        let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &ns);
        assert!(
            routes.get_opt("shop").await.unwrap().is_none(),
            "no route is made through a Service that is not its own"
        );
    })
    .await;
}
