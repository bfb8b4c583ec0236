//! Two `weir run` processes: one leads and writes; the other takes over when it dies, and a
//! SIGTERM hands the lease over at once.

use crate::support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use support::microservice::{self as ms_support, microservice, wait_ready};
use support::operator::Operator;
use support::{audit, wait_for, with_temp_ns};

const DEADLINE: Duration = Duration::from_secs(90);
const LEASE_SECONDS: u64 = 6;

fn election(extra: &str) -> Vec<String> {
    vec![
        "--leader-elect=true".into(),
        "--lease-name".into(),
        "weir-test".into(),
        "--lease-seconds".into(),
        LEASE_SECONDS.to_string(),
        extra.into(),
    ]
}

fn holder(lease: Option<&Lease>) -> String {
    lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

/// Waits until the lease is held by one of `candidates`; returns which.
async fn wait_for_holder(leases: &Api<Lease>, candidates: &[&str]) -> String {
    let wanted: Vec<String> = candidates.iter().map(|c| c.to_string()).collect();
    let lease = wait_for(
        leases.clone(),
        "weir-test",
        DEADLINE,
        "a leader",
        move |l: Option<&Lease>| wanted.contains(&holder(l)),
    )
    .await;
    holder(lease.as_ref())
}

#[tokio::test]
async fn only_the_leader_writes_and_a_follower_takes_over() {
    with_temp_ns(|client, ns| async move {
        let args = |_: &str| election("--resync-seconds=300");
        let a_args = args("a");
        let b_args = args("b");
        let a = Operator::start(
            &ns,
            "leader-a",
            &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
        let b = Operator::start(
            &ns,
            "leader-b",
            &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        let first = wait_for_holder(&leases, &["leader-a", "leader-b"]).await;
        let (leader, follower, follower_name) = if first == "leader-a" {
            (a, b, "leader-b")
        } else {
            (b, a, "leader-a")
        };

        let from = audit::mark();
        let api = ms_support::create(&client, &ns, &microservice("elected", json!({}))).await;
        wait_ready(&api, "elected", 1, DEADLINE).await;
        let written_by = writers(from, &ns);
        assert_eq!(
            written_by,
            vec![format!("weir/{} ({first})", env!("CARGO_PKG_VERSION"))],
            "only the leader writes"
        );

        // The leader dies without a word: the follower takes over once the lease runs out.
        leader.signal("-KILL").await;
        let killed = Instant::now();
        wait_for_holder(&leases, &[follower_name]).await;
        let takeover = killed.elapsed();
        let retry = Duration::from_secs(LEASE_SECONDS) / 3;
        assert!(
            takeover <= Duration::from_secs(LEASE_SECONDS) + retry + Duration::from_secs(1),
            "takeover took {takeover:?} with a {LEASE_SECONDS}s lease"
        );
        drop(leader);

        let from = audit::mark();
        let generation =
            ms_support::edit_spec(&api, "elected", json!({"image": "registry.example/app:2"}))
                .await;
        wait_ready(&api, "elected", generation, DEADLINE).await;
        let written_by = writers(from, &ns);
        assert_eq!(
            written_by,
            vec![format!(
                "weir/{} ({follower_name})",
                env!("CARGO_PKG_VERSION")
            )]
        );

        // SIGTERM releases the lease: a newcomer leads well before the lease would expire.
        let mut follower = follower;
        follower.signal("-TERM").await;
        let exit = tokio::time::timeout(DEADLINE, follower.child.wait())
            .await
            .expect("exits")
            .expect("status");
        assert!(exit.success(), "SIGTERM exit: {exit}");
        let released = Instant::now();
        let c_args = args("c");
        let _c = Operator::start(
            &ns,
            "leader-c",
            &c_args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
        wait_for_holder(&leases, &["leader-c"]).await;
        let handover = released.elapsed();
        assert!(
            handover < Duration::from_secs(LEASE_SECONDS),
            "hand-over after SIGTERM took {handover:?}"
        );
    })
    .await;
}

/// Distinct user agents of Weir's non-lease writes in `ns` since `from`.
fn writers(from: u64, ns: &str) -> Vec<String> {
    let mut agents: Vec<String> = audit::weir_writes(&audit::since(from), ns)
        .into_iter()
        .map(|e| e.user_agent)
        .collect();
    agents.sort();
    agents.dedup();
    agents
}

/// Of several replicas that find the lease expired at the same moment, exactly one takes it:
/// every write to the Lease is conditional on the version its writer read.
#[tokio::test]
async fn of_replicas_racing_for_an_expired_lease_exactly_one_takes_it() {
    use weir::controller::lease::{Attempt, LeaseLock};
    with_temp_ns(|client, ns| async move {
        let ttl = Duration::from_secs(1);
        let gone = LeaseLock::new(client.clone(), &ns, "race", "gone", ttl);
        assert_eq!(gone.try_acquire_or_renew().await.unwrap(), Attempt::Held);
        let replicas: Vec<LeaseLock> = (0..8)
            .map(|i| LeaseLock::new(client.clone(), &ns, "race", &format!("replica-{i}"), ttl))
            .collect();
        for replica in &replicas {
            let attempt = replica.try_acquire_or_renew().await.unwrap();
            assert_eq!(attempt, Attempt::HeldBy("gone".into()));
        }
        // Nobody renews: once a lease's duration has passed as each replica saw it, all try
        // at once.
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        let attempts =
            futures::future::join_all(replicas.iter().map(|r| r.try_acquire_or_renew())).await;
        let winners: Vec<usize> = attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Ok(Attempt::Held)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "replicas that took the lease: {winners:?} ({attempts:?})"
        );
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        let lease = leases.get("race").await.unwrap();
        assert_eq!(holder(Some(&lease)), format!("replica-{}", winners[0]));
    })
    .await;
}
