//! Apply: brings the children in line with the plan and says what it did. The order keeps
//! traffic safe: the slots' Deployments first (pods take longest), then the Services and
//! the route that send traffic to them, then what guards and scales them. It stops at the
//! first problem (a name taken by a foreign object, a child the API server refuses), which
//! the status then reports; a spec that names a foreign parent, or a router the cluster
//! does not serve, is not applied at all.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::cache_form::CachedDeployment;
use super::children::{Child, ChildOutcome, Foreign, ensure, ensure_or, owned_by, remove};
use super::context::Context;
use super::decide::Plan;
use super::error::Cause;
use super::observe::Observation;
use super::problem::Problem;
use crate::api::{Microservice, MigrationPhase, RouteKind, Slot};
use crate::build::{self, traffic};
use crate::release::{Decision, Router, SlotPlan, TrafficPlan, other};
use crate::takeover;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;

/// What the apply stage did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Children created, as `Kind name`.
    pub created: Vec<String>,
    /// Children deleted as no longer wanted, as `Kind name`.
    pub deleted: Vec<String>,
    /// A slot's Deployment was built from the spec and created or changed.
    pub deployment_written: bool,
    /// The active slot's Deployment: as just written when it was (the cache may not have
    /// seen the write, and a stale copy would report the old rollout as done), else cached.
    pub active_deployment: Option<CachedDeployment>,
    /// What stopped the apply.
    pub problem: Option<Problem>,
}

/// Applies the plan's children, unless the spec asks for something Weir must not do here.
pub async fn apply(
    observation: &Observation,
    plan: &Plan,
    ctx: &Context,
) -> Result<Applied, Cause> {
    let mut writer = Writer {
        ms: &observation.ms,
        namespace: &observation.namespace,
        uid: &observation.uid,
        ctx,
        takeover: plan.takeover.as_ref(),
        applied: Applied::default(),
    };
    let active = plan.decision.fields.active_slot;
    let mut written_active = None;
    writer.applied.problem = match spec_problem(observation) {
        Some(problem) => Some(problem),
        None => {
            let made = super::config::ensure_snapshots(&observation.ms, &observation.config, ctx);
            writer.applied.created.extend(made.await?);
            writer.children(&plan.decision, &mut written_active).await?
        }
    };
    if writer.applied.problem.is_none() {
        let ms = &observation.ms;
        let pruned = super::config::prune(ms, &observation.config, ctx, &observation.uid);
        writer.applied.deleted.extend(pruned.await?);
    }
    let mut applied = writer.applied;
    applied.active_deployment = written_active
        .as_ref()
        .map(CachedDeployment::from)
        .or_else(|| {
            let name = build::deployment_name(&observation.name, active);
            ctx.caches
                .deployments
                .get(&ObjectRef::new(&name).within(&observation.namespace))
                .map(|d| (*d).clone())
        });
    Ok(applied)
}

/// A problem in the spec itself that stops every write: a route through another Service
/// (a Microservice touches nothing outside its own objects), or through Gateway API on a
/// cluster that does not serve it.
pub fn spec_problem(observation: &Observation) -> Option<Problem> {
    if let Some(parent) = foreign_parent(&observation.ms) {
        return Some(Problem::ForeignParent {
            parent,
            own: observation.name.clone(),
        });
    }
    (observation.router == Router::GatewayApi && !observation.gateway_api)
        .then_some(Problem::GatewayApiMissing)
}

/// A Service parent other than the Microservice's own.
fn foreign_parent(ms: &Microservice) -> Option<String> {
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let gateway = ms
        .spec
        .rollout
        .as_ref()?
        .traffic
        .as_ref()?
        .gateway_api
        .as_ref()?;
    gateway
        .parent_refs
        .iter()
        .find(|p| p.kind.as_deref() == Some("Service") && (p.name != name || p.namespace.is_some()))
        .map(|p| p.name.clone())
}

/// Whether the takeover is over (just now, or recorded so): Weir may then take the
/// consenting Service, PodDisruptionBudget and autoscaler of its name whole.
fn taken_over(ms: &Microservice, step: Option<&takeover::Step>) -> bool {
    let done = |phase| phase == MigrationPhase::Completed;
    match step {
        Some(step) => done(step.status.phase),
        None => {
            ms.spec.migrate_from.is_some()
                && ms
                    .status
                    .as_ref()
                    .and_then(|s| s.migration.as_ref())
                    .is_some_and(|m| done(m.phase))
        }
    }
}

/// The Services a Microservice may have, and which slot each selects when wanted: `<name>`
/// always, the per-slot Services behind a route, `<name>-preview` during a blue/green
/// release.
pub fn wanted_services(
    name: &str,
    gateway: bool,
    traffic: &TrafficPlan,
) -> [(String, bool, Option<Slot>); 4] {
    [
        (name.to_string(), true, traffic.service_slot),
        (
            traffic::slot_service_name(name, Slot::Blue),
            gateway,
            Some(Slot::Blue),
        ),
        (
            traffic::slot_service_name(name, Slot::Green),
            gateway,
            Some(Slot::Green),
        ),
        (
            format!("{name}-preview"),
            traffic.preview,
            Some(traffic.split.candidate),
        ),
    ]
}

/// Writes one Microservice's children and keeps the tally.
struct Writer<'a> {
    ms: &'a Microservice,
    namespace: &'a str,
    uid: &'a str,
    ctx: &'a Context,
    /// The takeover's step, while one runs.
    takeover: Option<&'a takeover::Step>,
    applied: Applied,
}

impl Writer<'_> {
    fn api<K: Child + Resource<Scope = NamespaceResourceScope>>(&self) -> Api<K> {
        Api::namespaced(self.ctx.client.clone(), self.namespace)
    }

    /// Every child in the safe order; the first problem stops it.
    async fn children(
        &mut self,
        decision: &Decision,
        written_active: &mut Option<Deployment>,
    ) -> Result<Option<Problem>, Cause> {
        let active = decision.fields.active_slot;
        for (slot, slot_plan) in [
            (active, &decision.active_plan),
            (other(active), &decision.other_plan),
        ] {
            match self.slot(slot, slot_plan).await? {
                ChildOutcome::Blocked(problem) => return Ok(Some(problem)),
                ChildOutcome::Created(d) | ChildOutcome::Updated(d) if slot == active => {
                    *written_active = Some(d);
                }
                _ => {}
            }
        }
        let ctx = self.ctx;
        let name = self.ms.metadata.name.clone().unwrap_or_default();
        let gateway = crate::release::router(self.ms) == Router::GatewayApi;
        for (service_name, wanted, slot) in wanted_services(&name, gateway, &decision.traffic) {
            let desired = wanted
                .then(|| build::service(self.ms, &service_name, slot))
                .flatten();
            let foreign = if service_name == name {
                if !self.take_over(&name).await? {
                    continue;
                }
                self.foreign(&name, taken_over(self.ms, self.takeover))
            } else {
                Foreign::Conflict
            };
            if let Some(problem) = self
                .sync_or(&ctx.caches.services, &service_name, desired, foreign)
                .await?
            {
                return Ok(Some(problem));
            }
        }
        // The route of the spec's kind; one of the other kind (the kind changed) goes.
        let kind = traffic::route_kind(self.ms);
        let split = &decision.traffic.split;
        if let Some(routes) = &ctx.caches.http_routes {
            let wanted = gateway && kind == RouteKind::HttpRoute;
            let desired = wanted.then(|| traffic::route(self.ms, split));
            if let Some(problem) = self.sync::<HttpRoute>(routes, &name, desired).await? {
                return Ok(Some(problem));
            }
        }
        if let Some(routes) = &ctx.caches.grpc_routes {
            let wanted = gateway && kind == RouteKind::GrpcRoute;
            let desired = wanted.then(|| build::grpc_route::route(self.ms, split));
            if let Some(problem) = self.sync::<GrpcRoute>(routes, &name, desired).await? {
                return Ok(Some(problem));
            }
        }
        self.guards(&name).await
    }

    /// The PodDisruptionBudget and the HorizontalPodAutoscaler. During a takeover, ones of
    /// the same name that consent are taken over from the switch on (they then guard and
    /// scale Weir's pods), and left alone before it.
    async fn guards(&mut self, name: &str) -> Result<Option<Problem>, Cause> {
        let ctx = self.ctx;
        let caches = &ctx.caches;
        let adoptable = self.takeover.is_some_and(takeover::Step::guards_adoptable)
            || taken_over(self.ms, None);
        let foreign = self.foreign(name, adoptable);
        let pdb = build::pod_disruption_budget(self.ms);
        if let Some(problem) = self
            .sync_or::<PodDisruptionBudget>(&caches.pod_disruption_budgets, name, pdb, foreign)
            .await?
        {
            return Ok(Some(problem));
        }
        let hpa = build::horizontal_pod_autoscaler(self.ms);
        self.sync_or::<HorizontalPodAutoscaler>(
            &caches.horizontal_pod_autoscalers,
            name,
            hpa,
            foreign,
        )
        .await
    }

    /// What to do with a foreign object of the Microservice's name: taken over once the
    /// takeover allows it, left alone while one runs, else a conflict.
    fn foreign<'n>(&self, name: &'n str, adoptable: bool) -> Foreign<'n> {
        match (adoptable, self.takeover.is_some()) {
            (true, _) => Foreign::Adopt(name),
            (false, true) => Foreign::Leave(name),
            (false, false) => Foreign::Conflict,
        }
    }

    /// The takeover's writes to the Service's selector and the old Deployment. True when
    /// Service `<name>` is then Weir's to apply whole (no takeover runs, or it just ended).
    async fn take_over(&mut self, name: &str) -> Result<bool, Cause> {
        let Some(step) = self.takeover else {
            return Ok(true);
        };
        let client = &self.ctx.client;
        super::takeover::set_selector(client, self.namespace, name, &step.selector).await?;
        let old = &step.status.deployment;
        if let Some(deleted) =
            super::takeover::move_old(client, self.namespace, old, &step.old).await?
        {
            self.applied.deleted.push(deleted);
        }
        Ok(step.status.phase == MigrationPhase::Completed)
    }

    /// Brings one slot's Deployment to its plan: built from the spec, scaled only (its
    /// template is an older revision that must not change), left alone, or deleted.
    async fn slot(
        &mut self,
        slot: Slot,
        plan: &SlotPlan,
    ) -> Result<ChildOutcome<Deployment>, Cause> {
        let name =
            build::deployment_name(self.ms.metadata.name.as_deref().unwrap_or_default(), slot);
        let ctx = self.ctx;
        let cache = &ctx.caches.deployments;
        let api = self.api::<Deployment>();
        match plan {
            SlotPlan::Template(replicas) => {
                let desired = build::slot_deployment(self.ms, slot, *replicas, &ctx.defaults);
                let outcome = ensure(&api, cache, self.uid, &desired).await?;
                self.note(&outcome);
                if matches!(outcome, ChildOutcome::Created(_) | ChildOutcome::Updated(_)) {
                    self.applied.deployment_written = true;
                }
                Ok(outcome)
            }
            SlotPlan::Scale(replicas) => {
                let live = cache.get(&ObjectRef::new(&name).within(self.namespace));
                let Some(live) = live else {
                    return Ok(ChildOutcome::Unchanged);
                };
                let current = live.numbers().replicas;
                if !owned_by(&*live, self.uid) || current == Some(*replicas) {
                    return Ok(ChildOutcome::Unchanged);
                }
                let patch = json!({"spec": {"replicas": replicas}});
                let scaled = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                Ok(ChildOutcome::Updated(scaled))
            }
            SlotPlan::Keep => Ok(ChildOutcome::Unchanged),
            SlotPlan::Delete => {
                self.delete(&api, cache, &name).await?;
                Ok(ChildOutcome::Unchanged)
            }
        }
    }

    /// Applies `desired` as the object `name`, or deletes Weir's object of that name when
    /// it is not wanted; a problem stops it.
    async fn sync<K>(
        &mut self,
        cache: &Store<K::Cached>,
        name: &str,
        desired: Option<K>,
    ) -> Result<Option<Problem>, Cause>
    where
        K: Child + Resource<Scope = NamespaceResourceScope>,
    {
        self.sync_or(cache, name, desired, Foreign::Conflict).await
    }

    /// `sync`, with what to do when a foreign object holds the name.
    async fn sync_or<K>(
        &mut self,
        cache: &Store<K::Cached>,
        name: &str,
        desired: Option<K>,
        foreign: Foreign<'_>,
    ) -> Result<Option<Problem>, Cause>
    where
        K: Child + Resource<Scope = NamespaceResourceScope>,
    {
        let api = self.api::<K>();
        match desired {
            Some(desired) => match ensure_or(&api, cache, self.uid, &desired, foreign).await? {
                ChildOutcome::Blocked(problem) => Ok(Some(problem)),
                outcome => {
                    self.note(&outcome);
                    Ok(None)
                }
            },
            None => {
                self.delete(&api, cache, name).await?;
                Ok(None)
            }
        }
    }

    async fn delete<K: Child>(
        &mut self,
        api: &Api<K>,
        cache: &Store<K::Cached>,
        name: &str,
    ) -> Result<(), Cause> {
        if remove(api, cache, self.namespace, name, self.uid).await? {
            self.applied.deleted.push(format!("{} {name}", K::KIND));
        }
        Ok(())
    }

    fn note<K: Child>(&mut self, outcome: &ChildOutcome<K>) {
        if let ChildOutcome::Created(object) = outcome {
            let name = object.name_any();
            self.applied.created.push(format!("{} {name}", K::KIND));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::traffic::Split;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::{Value, json};

    fn observation(rollout: Value, gateway_api: bool) -> Observation {
        let ms: Microservice = serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "pay", "namespace": "shop", "uid": "u1", "generation": 1},
            "spec": {"image": "a:1", "ports": [{"name": "http", "port": 80}], "rollout": rollout}
        }))
        .unwrap();
        let mut observation = Observation::bare(ms, "r1", Timestamp::UNIX_EPOCH);
        observation.gateway_api = gateway_api;
        observation
    }

    fn routed(parent: Value) -> Value {
        json!({"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [parent]}}})
    }

    #[test]
    fn a_route_through_another_service_or_a_missing_gateway_api_is_refused() {
        let own = routed(json!({"kind": "Service", "name": "pay"}));
        assert_eq!(spec_problem(&observation(own, true)), None);
        let foreign = routed(json!({"kind": "Service", "name": "billing"}));
        assert_eq!(
            spec_problem(&observation(foreign, true)),
            Some(Problem::ForeignParent {
                parent: "billing".into(),
                own: "pay".into()
            })
        );
        let elsewhere = routed(json!({"kind": "Service", "name": "pay", "namespace": "other"}));
        assert!(matches!(
            spec_problem(&observation(elsewhere, true)),
            Some(Problem::ForeignParent { .. })
        ));
        let gateway = routed(json!({"name": "public"}));
        assert_eq!(spec_problem(&observation(gateway.clone(), true)), None);
        assert_eq!(
            spec_problem(&observation(gateway, false)),
            Some(Problem::GatewayApiMissing)
        );
        assert_eq!(
            spec_problem(&observation(json!({}), false)),
            None,
            "no router, no need"
        );
    }

    #[test]
    fn slot_services_exist_behind_a_route_and_the_preview_during_blue_green() {
        let plan = TrafficPlan {
            split: Split {
                stable: Slot::Blue,
                candidate: Slot::Green,
                weight: 0,
                header_route: vec![],
                mirror_percent: 0,
            },
            service_slot: Some(Slot::Blue),
            preview: true,
        };
        let wanted: Vec<_> = wanted_services("pay", false, &plan)
            .into_iter()
            .filter(|(_, wanted, _)| *wanted)
            .map(|(name, _, slot)| (name, slot))
            .collect();
        assert_eq!(
            wanted,
            [
                ("pay".to_string(), Some(Slot::Blue)),
                ("pay-preview".to_string(), Some(Slot::Green))
            ]
        );
        let routed = wanted_services("pay", true, &plan);
        assert!(routed[1].1 && routed[2].1);
        assert_eq!(routed[1].0, "pay-blue");
    }
}
