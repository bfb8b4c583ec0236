//! `Harness`: a Microservice under release with its operator and fake gateway. The waits,
//! actions and recorders a release test uses on the Microservice are its [`Member`]'s,
//! reached through the Harness; other Microservices of the namespace join it and share its
//! operator and gateway.

use std::ops::Deref;

use kube::Client;
use serde_json::Value;

use super::super::gateway::FakeGateway;
use super::super::install_crds;
use super::super::operator::Operator;
use super::{DEADLINE, Member};

/// A Microservice under release, with its operator and the fake gateway of its namespace.
/// Dereferences to the Microservice's [`Member`].
pub struct Harness {
    member: Member,
    pub operator: Operator,
    /// The fake gateway of the namespace; None on the real data plane, whose Traefik answers.
    fake_gateway: Option<FakeGateway>,
    flags: Vec<String>,
    operators_started: u32,
}

impl Deref for Harness {
    type Target = Member;

    fn deref(&self) -> &Member {
        &self.member
    }
}

impl Harness {
    /// Installs the CRDs, starts the fake gateway and an operator, applies Microservice
    /// `name` (as the GitOps tool would) with `spec` overrides, and waits until its first
    /// version is deployed: Healthy in slot blue, with a stable revision and no release.
    pub async fn start(client: &Client, ns: &str, name: &str, spec: Value) -> Harness {
        Harness::start_with_flags(client, ns, name, spec, &[]).await
    }

    /// `start`, with extra flags for `weir run`.
    pub async fn start_with_flags(
        client: &Client,
        ns: &str,
        name: &str,
        spec: Value,
        flags: &[&str],
    ) -> Harness {
        let gateway = FakeGateway::start(client.clone(), ns);
        Harness::start_with(client, ns, name, spec, flags, Some(gateway)).await
    }

    /// `start` without the fake gateway: routes attach to the local data plane's Gateway and
    /// Traefik's own status counts (tests/support/dataplane.rs).
    pub async fn start_on_data_plane(
        client: &Client,
        ns: &str,
        name: &str,
        spec: Value,
        flags: &[&str],
    ) -> Harness {
        Harness::start_with(client, ns, name, spec, flags, None).await
    }

    async fn start_with(
        client: &Client,
        ns: &str,
        name: &str,
        spec: Value,
        flags: &[&str],
        fake_gateway: Option<FakeGateway>,
    ) -> Harness {
        install_crds(client).await;
        let operator = Operator::start(ns, &format!("{name}-0"), flags).await;
        let member = Member::deploy(client, ns, name, spec).await;
        Harness {
            member,
            operator,
            fake_gateway,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            operators_started: 1,
        }
    }

    /// Another Microservice `name` in the namespace, with `spec` overrides, served by this
    /// Harness's operator and gateway (one operator per namespace: two would both act on
    /// every Microservice). Returns once its first version is deployed, as `start` does.
    pub async fn join(&self, name: &str, spec: Value) -> Member {
        Member::deploy(&self.client, &self.ns, name, spec).await
    }

    /// The fake gateway; panics on the data plane, which has none.
    pub fn gateway(&self) -> &FakeGateway {
        self.fake_gateway
            .as_ref()
            .expect("a fake gateway (this Harness runs on the data plane)")
    }

    /// Kills the operator with SIGKILL (no chance to tidy up) and starts a new one.
    pub async fn kill_and_restart_operator(&mut self) {
        self.operator.signal("-KILL").await;
        tokio::time::timeout(DEADLINE, self.operator.child.wait())
            .await
            .expect("the operator exits after SIGKILL")
            .expect("the operator's exit status");
        let identity = format!("{}-{}", self.name, self.operators_started);
        self.operators_started += 1;
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.operator = Operator::start(&self.ns, &identity, &flags).await;
    }
}
