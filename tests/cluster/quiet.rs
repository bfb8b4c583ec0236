//! A settled Microservice costs nothing: no writes, no events, however often it is checked.

use crate::support;

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use support::microservice::{self as ms_support, microservice, wait_ready};
use support::operator::{Operator, metric_sum};
use support::{audit, with_temp_ns};

const DEADLINE: Duration = Duration::from_secs(120);
const SERVICES: usize = 20;
/// The observation window the issue names; resyncs every 10 s fall inside it.
const IDLE_WINDOW: Duration = Duration::from_secs(60);

#[tokio::test]
async fn settled_microservices_cause_no_writes_and_no_events_across_resyncs() {
    with_temp_ns(|client, ns| async move {
        let created_from = audit::mark();
        let operator = Operator::start(&ns, "quiet", &["--resync-seconds", "10"]).await;
        let names: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i}")).collect();
        let mut apis = Vec::new();
        for name in &names {
            apis.push(
                ms_support::create(&client, &ns, &microservice(name, json!({"replicas": 2}))).await,
            );
        }
        join_all(
            apis.iter()
                .zip(&names)
                .map(|(api, name)| wait_ready(api, name, 1, DEADLINE)),
        )
        .await;

        // Weir's requests name it, and its writes are there while it creates.
        let creation = audit::since(created_from);
        let writes = audit::weir_writes(&creation, &ns);
        assert!(
            !writes.is_empty(),
            "no writes by a weir/ user agent while creating"
        );
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            writes
                .iter()
                .all(|w| w.user_agent == format!("weir/{version} (quiet)")),
            "user agents: {:?}",
            writes.iter().map(|w| &w.user_agent).collect::<Vec<_>>()
        );

        // Let the last status writes and events land, then observe a full idle window.
        support::eventually(DEADLINE, "the operator to settle", || async {
            let mark = audit::mark();
            tokio::time::sleep(Duration::from_secs(3)).await;
            audit::weir_writes(&audit::since(mark), &ns)
                .is_empty()
                .then_some(())
        })
        .await;
        let events_before = count_events(&client, &ns, &names).await;
        let reconciles_before = metric_sum(&operator.metrics().await, "weir_reconciles_total", "");
        let window_start = audit::mark();
        tokio::time::sleep(IDLE_WINDOW).await;
        let idle_writes = audit::weir_writes(&audit::since(window_start), &ns);
        let reconciles =
            metric_sum(&operator.metrics().await, "weir_reconciles_total", "") - reconciles_before;
        let events_after = count_events(&client, &ns, &names).await;

        assert!(
            reconciles >= (SERVICES * 4) as f64,
            "expected forced resyncs in the window, saw {reconciles} reconciles"
        );
        let described: Vec<_> = idle_writes
            .iter()
            .map(|w| {
                format!(
                    "{} {} {:?}",
                    w.verb,
                    w.resource(),
                    w.object_ref.as_ref().map(|o| &o.name)
                )
            })
            .collect();
        assert!(idle_writes.is_empty(), "writes while idle: {described:?}");
        assert_eq!(
            events_before, events_after,
            "events were published for a steady object"
        );
        // Normal events only for real transitions: a new Microservice's children created (its
        // first rollout needs no second event; later rollouts are RolledOut, see core.rs).
        let events = ms_support::events(&client, &ns, "svc-0").await;
        let reasons: Vec<_> = events.iter().map(|(t, r, _)| format!("{t}/{r}")).collect();
        assert_eq!(reasons, ["Normal/Created"], "{events:?}");
        let created = &events[0].2;
        assert_eq!(
            created, "Created Deployment svc-0-blue, Service svc-0, PodDisruptionBudget svc-0",
            "one event names every child created"
        );
    })
    .await;
}

async fn count_events(client: &kube::Client, ns: &str, names: &[String]) -> usize {
    let mut count = 0;
    for name in names {
        count += ms_support::events(client, ns, name).await.len();
    }
    count
}
