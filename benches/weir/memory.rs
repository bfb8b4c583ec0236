//! Where the operator's bytes go at rest, per cached kind. With N Microservices Ready, the
//! driver reads what each of the operator's caches holds (the same objects: the same label
//! selector, in the same namespace), stores it in a reflector Store the way the operator does
//! (through `weir::controller::cache_form`, the operator's own trimming), and measures the
//! heap that Store holds with dhat, the driver's allocator. The rest of the operator's RSS
//! is its baseline (binary, runtime, clients: its RSS with nothing to watch) and the
//! allocator's slack.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use weir::controller::cache_form::{self, Cached, CachedDeployment, CachedService};

use crate::report::{Row, fmt, row};

/// One cache's share: objects and the bytes its Store holds.
struct Share {
    kind: &'static str,
    objects: usize,
    bytes: usize,
}

/// The breakdown of the caches of namespace `ns` as JSON: per kind objects, bytes and bytes
/// per object, and their total.
pub async fn breakdown(client: &Client, ns: &str) -> Value {
    let selector = "app.kubernetes.io/managed-by=weir";
    let mut shares = vec![microservices(client, ns).await];
    shares.push(child::<CachedDeployment>(client, ns, selector, "Deployment").await);
    shares.push(child::<CachedService>(client, ns, selector, "Service").await);
    shares.push(child::<EndpointSlice>(client, ns, selector, "EndpointSlice").await);
    shares.push(child::<PodDisruptionBudget>(client, ns, selector, "PodDisruptionBudget").await);
    shares.push(
        child::<HorizontalPodAutoscaler>(client, ns, selector, "HorizontalPodAutoscaler").await,
    );
    let total: usize = shares.iter().map(|s| s.bytes).sum();
    let kinds: Vec<Value> = shares
        .iter()
        .map(|s| {
            json!({"kind": s.kind, "objects": s.objects, "bytes": s.bytes,
                   "bytes_per_object": (s.objects > 0).then(|| s.bytes / s.objects)})
        })
        .collect();
    json!({"kinds": kinds, "total_bytes": total})
}

/// The objects of a list, as JSON text: read before measuring, so that only what the
/// Store keeps of them is counted.
async fn raw_list(
    client: &Client,
    ns: &str,
    resource: &ApiResource,
    selector: &str,
) -> Vec<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    let params = ListParams::default().labels(selector);
    let list = api
        .list(&params)
        .await
        .unwrap_or_else(|e| die!("memory breakdown: list {} in {ns}: {e}", resource.kind));
    list.items
        .iter()
        .map(|o| serde_json::to_string(o).unwrap_or_else(|e| die!("serialize: {e}")))
        .collect()
}

/// The heap a Store holds once `texts` are parsed, trimmed by `slim` and stored.
fn stored_bytes<K>(texts: Vec<String>, slim: impl Fn(&mut K)) -> usize
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + 'static,
{
    let profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().curr_bytes;
    let (store, mut writer) = reflector::store::<K>();
    writer.apply_watcher_event(&Event::Init);
    for text in &texts {
        let mut object: K =
            serde_json::from_str(text).unwrap_or_else(|e| die!("memory breakdown: parse: {e}"));
        slim(&mut object);
        writer.apply_watcher_event(&Event::InitApply(object));
    }
    writer.apply_watcher_event(&Event::InitDone);
    let after = dhat::HeapStats::get().curr_bytes;
    let held = after.saturating_sub(before);
    drop((store, writer));
    drop(profiler);
    held
}

async fn child<K>(client: &Client, ns: &str, selector: &str, kind: &'static str) -> Share
where
    K: Resource<DynamicType = ()> + Cached + Clone + DeserializeOwned + 'static,
{
    let texts = raw_list(client, ns, &ApiResource::erase::<K>(&()), selector).await;
    let objects = texts.len();
    let bytes = stored_bytes::<K>(texts, |object| object.slim());
    Share {
        kind,
        objects,
        bytes,
    }
}

async fn microservices(client: &Client, ns: &str) -> Share {
    let resource = ApiResource::erase::<weir::api::Microservice>(&());
    let texts = raw_list(client, ns, &resource, "").await;
    let objects = texts.len();
    let bytes = stored_bytes(texts, cache_form::microservice);
    Share {
        kind: "Microservice",
        objects,
        bytes,
    }
}

/// The breakdown as table rows: per cache its MiB, objects and bytes per object.
pub fn rows(breakdown: &Value) -> Vec<Row> {
    let mib = |bytes: &Value| bytes.as_f64().map(|b| b / 1024.0 / 1024.0);
    let mut rows: Vec<Row> = breakdown["kinds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kind| {
            row(
                format!("cache: {}", kind["kind"].as_str().unwrap_or("")),
                fmt(mib(&kind["bytes"]), 2, " MiB"),
                format!(
                    "{} objects, {} bytes each",
                    kind["objects"], kind["bytes_per_object"]
                ),
            )
        })
        .collect();
    rows.push(row(
        "caches in all",
        fmt(mib(&breakdown["total_bytes"]), 2, " MiB"),
        "the heap the operator's Stores hold, measured with dhat",
    ));
    rows
}
