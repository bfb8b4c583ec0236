//! GitOps tools read and write Microservices: Argo CD's health check (the Lua in
//! `docs/gitops/argocd-health.lua`, run by a real Lua 5.1), kstatus as Flux and cli-utils
//! compute it (`hack/kstatus`, built from `sigs.k8s.io/cli-utils`), and Flux's server-side
//! apply of the manifest during and after a release.
//!
//! The status fixtures in `tests/fixtures/status/` are Microservices as a real release left
//! them; `status_fixtures_are_what_a_real_release_writes` takes them again and fails when
//! they no longer match; `WEIR_UPDATE_FIXTURES=1 cargo test --test cluster
//! gitops::status_fixtures` writes them anew.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::operator::metric_sum;
use support::release::{DEADLINE, GITOPS, Harness, Recorder, canary, release};
use support::with_temp_ns;
use tokio::sync::OnceCell;
use weir::api::{Microservice, Phase, Slot};
use weir::release::ManualAction;

const CHECKOUT_1: &str = "registry.example/checkout:1.4.2";
const CHECKOUT_2: &str = "registry.example/checkout:1.5.0";
const CHECKOUT_3: &str = "registry.example/checkout:1.6.0";
/// The field manager of Flux's kustomize-controller.
const FLUX: &str = "kustomize-controller";
/// Field managers that may own fields of Weir's children: Weir, the Deployment and
/// disruption controllers (status), and the fake gateway (route status).
const CHILD_MANAGERS: [&str; 3] = ["weir", "kube-controller-manager", "test-gateway"];
/// The status fixtures, each a Microservice in one phase.
const FIXTURES: [&str; 4] = ["healthy", "progressing", "paused", "degraded"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_path(name: &str) -> PathBuf {
    repo().join(format!("tests/fixtures/status/{name}.json"))
}

fn read_fixture(name: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; run `WEIR_UPDATE_FIXTURES=1 cargo test --test cluster gitops::status_fixtures` \
             against a cluster to take it",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A scratch file under the test target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gitops");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(support::unique_name(name))
}

// ---------------------------------------------------------------------------------------
// Argo CD: the Lua health check

/// A JSON value as a Lua 5.1 expression (Lua has no JSON reader): objects and arrays
/// become tables, null becomes nil, strings are escaped byte by byte.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'\\' => out.push_str("\\\\"),
                    b'"' => out.push_str("\\\""),
                    b'\n' => out.push_str("\\n"),
                    0x20..=0x7e => out.push(byte as char),
                    _ => out.push_str(&format!("\\{byte:03}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// What `docs/gitops/test-harness.lua` prints when it runs the Lua `script` on `object`
/// under `lua5.1`, as Argo CD would.
fn run_lua(script: &Path, object: &Value) -> String {
    let path = scratch("object.lua");
    std::fs::write(&path, format!("return {}\n", lua(object))).expect("write the object");
    let output = std::process::Command::new("lua5.1")
        .arg(repo().join("docs/gitops/test-harness.lua"))
        .arg(script)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lua5.1 ({e}): install it with hack/install-lua.sh (as root)")
        });
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed on {object:#}: {}{stdout}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The status and message Argo CD's health check gives `object`.
fn argo_health(object: &Value) -> (String, String) {
    let check = repo().join("docs/gitops/argocd-health.lua");
    let stdout = run_lua(&check, object);
    let mut lines = stdout.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let message = lines.collect::<Vec<_>>().join("\n");
    (status, message)
}

fn status_message(object: &Value) -> String {
    object
        .pointer("/status/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Asserts Argo CD's health of each object: `(name, object, expected status)`. The message
/// is Weir's own status message whenever Weir has seen the newest spec.
fn assert_argo_health(cases: &[(&str, &Value, &str)]) {
    for (name, object, expected) in cases {
        let (status, message) = argo_health(object);
        assert_eq!(
            &status, expected,
            "Argo CD health of {name}: {message}\n{object:#}"
        );
        assert_eq!(message, status_message(object), "message of {name}");
    }
}

#[test]
fn the_argo_cd_health_check_reads_each_phase_a_release_goes_through() {
    let fixtures: BTreeMap<&str, Value> = FIXTURES.iter().map(|f| (*f, read_fixture(f))).collect();
    assert_argo_health(&[
        ("healthy", &fixtures["healthy"], "Healthy"),
        ("progressing", &fixtures["progressing"], "Progressing"),
        ("paused", &fixtures["paused"], "Suspended"),
        ("degraded", &fixtures["degraded"], "Degraded"),
    ]);
    let degraded = argo_health(&fixtures["degraded"]).1;
    assert!(degraded.contains("aborted"), "{degraded}");

    // A spec newer than the status: whatever the phase says, Weir has not acted on it yet.
    for name in FIXTURES {
        let mut newer = fixtures[name].clone();
        let generation = newer["metadata"]["generation"]
            .as_i64()
            .expect("generation");
        newer["metadata"]["generation"] = json!(generation + 1);
        let (status, message) = argo_health(&newer);
        assert_eq!(status, "Progressing", "{name} with a newer spec: {message}");
        assert!(message.contains("generation"), "{message}");
    }
    // Not yet seen by Weir at all.
    let mut fresh = fixtures["healthy"].clone();
    fresh.as_object_mut().expect("an object").remove("status");
    assert_eq!(argo_health(&fresh).0, "Progressing");
}

// ---------------------------------------------------------------------------------------
// Argo CD: the resource actions

/// `docs/gitops/argocd-actions.yaml`, each Lua script written to a file: discovery, then
/// `(name, action)` for each definition.
fn argo_actions() -> (PathBuf, Vec<(String, PathBuf)>) {
    let path = repo().join("docs/gitops/argocd-actions.yaml");
    let text = std::fs::read_to_string(&path).expect("read argocd-actions.yaml");
    let actions: Value = serde_yaml::from_str(&text).expect("argocd-actions.yaml is YAML");
    let write = |name: &str, lua: &Value| {
        let file = scratch(&format!("{name}.lua"));
        std::fs::write(&file, lua.as_str().expect("Lua text")).expect("write the Lua");
        file
    };
    let discovery = write("discovery", &actions["discovery.lua"]);
    let definitions = actions["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .map(|d| {
            let name = d["name"].as_str().expect("a name").to_string();
            let file = write(&name, &d["action.lua"]);
            (name, file)
        })
        .collect();
    (discovery, definitions)
}

#[test]
fn argo_cd_offers_the_actions_weir_would_act_on() {
    let (discovery, _) = argo_actions();
    let enabled = |fixture: &str| -> Vec<String> {
        run_lua(&discovery, &read_fixture(fixture))
            .lines()
            .filter_map(|line| line.strip_suffix(" enabled"))
            .map(str::to_string)
            .collect()
    };
    let releasing = ["abort", "pause", "promote", "promote-full", "resume"];
    assert_eq!(enabled("paused"), releasing);
    assert_eq!(enabled("progressing"), releasing);
    assert_eq!(enabled("degraded"), ["retry"]);
    assert!(enabled("healthy").is_empty(), "{:?}", enabled("healthy"));
    for fixture in FIXTURES {
        let ms: Microservice =
            serde_json::from_value(read_fixture(fixture)).expect("a Microservice");
        // Sorted by name, as the harness prints them.
        let plugin: Vec<String> = [
            ManualAction::Abort,
            ManualAction::Pause,
            ManualAction::Promote,
            ManualAction::PromoteFull,
            ManualAction::Resume,
            ManualAction::Retry,
        ]
        .iter()
        .filter(|action| weir::plugin::actions::check_applicable(&ms, action).is_ok())
        .map(|action| action.as_str().to_string())
        .collect();
        assert_eq!(
            enabled(fixture),
            plugin,
            "{fixture}: the same rules as kubectl weir"
        );
    }
}

#[test]
fn each_argo_cd_action_sets_the_annotation_weir_acts_on() {
    let (_, definitions) = argo_actions();
    let names: Vec<&str> = definitions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "promote",
            "promote-full",
            "abort",
            "retry",
            "pause",
            "resume"
        ]
    );
    let mut object = read_fixture("paused");
    object["metadata"]["annotations"] = json!({"team": "payments"});
    for (name, action) in &definitions {
        let printed = run_lua(action, &object);
        let mut lines = printed.lines();
        let value = lines.next().unwrap_or_default();
        let (verb, nonce) = value
            .split_once('@')
            .unwrap_or_else(|| panic!("{name}: {value:?}"));
        assert_eq!(verb, name, "{value}");
        assert_eq!(
            nonce.len(),
            "20261202T055500Z".len(),
            "a time as the nonce: {value}"
        );
        assert_eq!(weir::release::parse_action(value).as_str(), name.as_str());
        assert_eq!(
            lines.next(),
            Some("2"),
            "{name} keeps the other annotations"
        );
    }
    let mut bare = read_fixture("paused");
    bare["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("annotations");
    let printed = run_lua(&definitions[0].1, &bare);
    assert!(printed.starts_with("promote@"), "{printed}");
}

// ---------------------------------------------------------------------------------------
// kstatus, as Flux and cli-utils compute it

/// What `hack/kstatus` printed for one object.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
struct KStatus {
    status: String,
    message: String,
    generation: i64,
    #[serde(rename = "observedGeneration")]
    observed_generation: Option<i64>,
}

/// `hack/kstatus`, built once per test binary by `hack/build-kstatus.sh` (cached by a hash
/// of its sources under ~/.cache/weir/tools).
async fn kstatus_binary() -> &'static Path {
    static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
    BINARY
        .get_or_init(|| async {
            let output = tokio::process::Command::new(repo().join("hack/build-kstatus.sh"))
                .output()
                .await
                .expect("run hack/build-kstatus.sh");
            assert!(
                output.status.success(),
                "hack/build-kstatus.sh failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            PathBuf::from(stdout.lines().last().expect("the binary's path").trim())
        })
        .await
}

async fn run_kstatus(args: &[&str], input: Option<String>) -> Vec<KStatus> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(kstatus_binary().await)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kstatus");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.unwrap_or_default().as_bytes())
        .await
        .expect("write to kstatus");
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kstatus answers within a minute")
        .expect("kstatus output");
    assert!(
        output.status.success(),
        "kstatus {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("kstatus printed {l}: {e}")))
        .collect()
}

/// kstatus of the live Microservice.
async fn kstatus_live(ns: &str, name: &str) -> KStatus {
    run_kstatus(&[ns, name], None).await.remove(0)
}

/// kstatus of each object.
async fn kstatus_of(objects: &[Value]) -> Vec<KStatus> {
    let input: String = objects.iter().map(|o| format!("{o}\n")).collect();
    let results = run_kstatus(&["--file", "-"], Some(input)).await;
    assert_eq!(results.len(), objects.len());
    results
}

/// What kstatus must say of a Microservice: `Current` only once a change is done (Weir has
/// seen the newest spec, the service is Healthy, no release runs), `Failed` once Weir gives
/// up on a change (Degraded: an abort, a failed analysis, a stalled rollout), and
/// `InProgress` otherwise, a release waiting for a promote included.
fn kstatus_expected(object: &Value) -> &'static str {
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let status = &object["status"];
    let observed = status["observedGeneration"].as_i64();
    if status.is_null() || observed != generation {
        return "InProgress";
    }
    match status["phase"].as_str() {
        Some("Healthy") if status["release"].is_null() => "Current",
        Some("Degraded") => "Failed",
        _ => "InProgress",
    }
}

fn summary(object: &Value) -> String {
    let status = &object["status"];
    format!(
        "generation {} observed {}, phase {}, release {}, conditions {}",
        object["metadata"]["generation"],
        status["observedGeneration"],
        status["phase"],
        status["release"],
        status["conditions"]
    )
}

/// Asserts kstatus' verdict on each object against `kstatus_expected`.
async fn assert_kstatus(what: &str, objects: &[Value]) {
    let results = kstatus_of(objects).await;
    let wrong: Vec<String> = objects
        .iter()
        .zip(&results)
        .filter(|(o, k)| k.status != kstatus_expected(o))
        .map(|(o, k)| {
            format!(
                "kstatus said {} ({}), expected {}: {}",
                k.status,
                k.message,
                kstatus_expected(o),
                summary(o)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: kstatus disagrees on {} of {} objects:\n{}",
        wrong.len(),
        objects.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn kstatus_reads_each_phase_a_release_goes_through() {
    let objects: Vec<Value> = FIXTURES.iter().map(|f| read_fixture(f)).collect();
    let results = kstatus_of(&objects).await;
    let statuses: Vec<&str> = results.iter().map(|k| k.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["Current", "InProgress", "InProgress", "Failed"],
        "kstatus of the fixtures {FIXTURES:?}: {results:#?}"
    );
    // Failed carries Weir's reason for giving up.
    assert_eq!(results[3].message, status_message(&objects[3]));
    assert_kstatus("the fixtures", &objects).await;
}

/// Every version of Microservice `name` from now on, as JSON.
async fn record_objects(h: &Harness) -> Recorder<Value> {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", h.name));
    let what = format!("Microservice {}", h.name);
    Recorder::start(h.api.clone(), config, &what, |all| {
        all.first()
            .map(|ms| serde_json::to_value(&**ms).expect("serialize"))
            .unwrap_or(Value::Null)
    })
    .await
}

#[tokio::test]
async fn kstatus_is_in_progress_during_a_release_current_once_promoted_failed_after_an_abort() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {}}
        ]);
        let spec = json!({"image": CHECKOUT_1, "rollout": canary(steps)});
        let h = Harness::start(&client, &ns, "kst", spec).await;
        let live = kstatus_live(&ns, &h.name).await;
        assert_eq!(live.status, "Current", "{live:?}");
        let versions = record_objects(&h).await;
        let stable = h.status().await.stable_revision.expect("a stable revision");

        // From the spec change on, whether or not Weir has seen it yet.
        let generation = h.set_image(CHECKOUT_2).await;
        let live = kstatus_live(&ns, &h.name).await;
        assert_eq!(
            live.status, "InProgress",
            "right after the change: {live:?}"
        );
        assert_eq!(live.generation, generation);

        let ms = h.wait_paused_at(1).await;
        let revision = release(&ms).revision.clone();
        assert_ne!(revision, stable);
        let live = kstatus_live(&ns, &h.name).await;
        assert_eq!(live.status, "InProgress", "waiting for a promote: {live:?}");
        h.act("promote").await;
        h.wait_paused_at(3).await;
        let live = kstatus_live(&ns, &h.name).await;
        assert_eq!(live.status, "InProgress", "at 75%: {live:?}");
        h.act("promote").await;
        h.wait_healthy_on(&revision).await;
        let live = kstatus_live(&ns, &h.name).await;
        assert_eq!(live.status, "Current", "promoted: {live:?}");

        // Every version the release went through: Current only at its end.
        let seen = versions.values();
        assert!(seen.len() > 4, "{seen:#?}");
        assert_kstatus("the release", &seen).await;
        let in_progress = |o: &Value| kstatus_expected(o) == "InProgress";
        let first = seen.iter().position(in_progress).expect("in progress");
        let last = seen.iter().rposition(in_progress).expect("in progress");
        let during = &seen[first..=last];
        assert!(
            during.iter().all(in_progress),
            "Current before the release was over: {:#?}",
            during.iter().map(summary).collect::<Vec<_>>()
        );
        assert_eq!(kstatus_expected(seen.last().unwrap()), "Current");

        // A release that is aborted has failed: Flux stops waiting and reports it.
        let from = versions.values().len();
        h.set_image(CHECKOUT_3).await;
        h.wait_paused_at(1).await;
        assert_eq!(kstatus_live(&ns, &h.name).await.status, "InProgress");
        h.act("abort").await;
        let aborted = h.wait_degraded("Aborted").await;
        let live = kstatus_live(&ns, &h.name).await;
        assert_eq!(
            live.status,
            "Failed",
            "after an abort kstatus says {live:?}; Weir's status: {}",
            summary(&serde_json::to_value(&aborted).unwrap())
        );
        assert_eq!(
            Some(live.message.as_str()),
            aborted.status.as_ref().and_then(|s| s.message.as_deref())
        );
        assert_kstatus("the aborted release", &versions.values()[from..]).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Fixtures from a real release

/// A Microservice as stored, without what differs from one run to the next and says
/// nothing about its health: managedFields, uid, resourceVersion, namespace, creation time.
fn trim(mut object: Value) -> Value {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for noise in [
            "managedFields",
            "uid",
            "resourceVersion",
            "namespace",
            "creationTimestamp",
        ] {
            metadata.remove(noise);
        }
        let annotations = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut);
        if let Some(annotations) = annotations {
            annotations.remove("weir.dev/action");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if let Some(status) = object["status"].as_object_mut() {
        status.remove("handledAction");
    }
    object
}

/// The live Microservice as raw JSON: every field the API server returns, whether or not
/// the Rust type knows it.
async fn snapshot(h: &Harness) -> Value {
    let resource = ApiResource::erase::<Microservice>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(h.client.clone(), &h.ns, &resource);
    let object = api.get(&h.name).await.expect("get the Microservice");
    trim(serde_json::to_value(object).expect("serialize"))
}

/// What a fixture must keep matching: whether Weir has seen the spec, the phase, the
/// conditions' types, statuses and reasons, and where the release stands.
fn meaning(object: &Value) -> Value {
    let status = &object["status"];
    let release = &status["release"];
    let mut conditions: Vec<Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!([c["type"], c["status"], c["reason"]]))
        .collect();
    conditions.sort_by_key(|c| c.to_string());
    json!({
        "seen": status["observedGeneration"] == object["metadata"]["generation"],
        "phase": status["phase"],
        "conditions": conditions,
        "activeSlot": status["activeSlot"],
        "aborted": !status["abortedRevision"].is_null(),
        "release": if release.is_null() { Value::Null } else { json!({
            "stepIndex": release["stepIndex"],
            "stepCount": release["stepCount"],
            "weight": release["weight"],
            "weightVerified": release["weightVerified"],
        })},
    })
}

#[tokio::test]
async fn status_fixtures_are_what_a_real_release_writes() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([
            {"setWeight": 20}, {"pause": {"duration": "1h"}},
            {"setWeight": 50}, {"pause": {}}
        ]);
        let spec = json!({"image": CHECKOUT_1, "rollout": canary(steps)});
        let h = Harness::start(&client, &ns, "checkout", spec).await;
        let mut taken = BTreeMap::new();

        h.set_image(CHECKOUT_2).await;
        let ms = h
            .wait_release_where("at 20%, confirmed, in the timed pause", |phase, r| {
                phase == Some(Phase::Progressing)
                    && r.step_index == 1
                    && r.weight == 20
                    && r.weight_verified
            })
            .await;
        let revision = release(&ms).revision.clone();
        taken.insert("progressing", snapshot(&h).await);

        let promote = h.act("promote").await;
        h.wait_handled(&promote).await;
        h.wait_release_where("paused at 50%, confirmed", |phase, r| {
            phase == Some(Phase::Paused) && r.step_index == 3 && r.weight_verified
        })
        .await;
        taken.insert("paused", snapshot(&h).await);

        let promote = h.act("promote").await;
        h.wait_handled(&promote).await;
        h.wait_healthy_on(&revision).await;
        h.wait("the old slot scaled down", |ms| {
            ms.status
                .as_ref()
                .is_some_and(|s| s.scale_down_at.is_none() && s.active_slot == Some(Slot::Green))
        })
        .await;
        taken.insert("healthy", snapshot(&h).await);

        h.set_image(CHECKOUT_3).await;
        h.wait_release_where("the next release at 20%", |_, r| {
            r.step_index == 1 && r.weight_verified
        })
        .await;
        let abort = h.act("abort").await;
        h.wait_handled(&abort).await;
        h.wait_degraded("Aborted").await;
        taken.insert("degraded", snapshot(&h).await);

        // Argo CD's check on the live objects themselves.
        assert_argo_health(&[
            ("live healthy", &taken["healthy"], "Healthy"),
            ("live progressing", &taken["progressing"], "Progressing"),
            ("live paused", &taken["paused"], "Suspended"),
            ("live degraded", &taken["degraded"], "Degraded"),
        ]);

        fixtures_match(&taken);
    })
    .await;
}

/// The committed fixtures mean what the release just wrote (with `WEIR_UPDATE_FIXTURES=1`:
/// writes them anew instead).
fn fixtures_match(taken: &BTreeMap<&str, Value>) {
    let update = std::env::var("WEIR_UPDATE_FIXTURES").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, object) in taken {
        let path = fixture_path(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).expect("fixture dir");
            let text = serde_json::to_string_pretty(object).expect("serialize") + "\n";
            std::fs::write(&path, text).expect("write the fixture");
            continue;
        }
        let committed = read_fixture(name);
        if meaning(&committed) != meaning(object) {
            stale.push(format!(
                "{}:\n  committed {}\n  now       {}",
                path.display(),
                meaning(&committed),
                meaning(object)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "the status fixtures no longer match what Weir writes; run \
         `WEIR_UPDATE_FIXTURES=1 cargo test --test cluster gitops::status_fixtures` and commit \
         tests/fixtures/status/:\n{}",
        stale.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Flux: server-side apply of the manifest, again and again

/// Field managers of an object, with the subresource they wrote through.
fn managers(meta: &ObjectMeta) -> Vec<String> {
    let mut managers: Vec<String> = meta
        .managed_fields
        .iter()
        .flatten()
        .map(|e| {
            let manager = e.manager.clone().unwrap_or_default();
            match e.subresource.as_deref() {
                Some(sub) if !sub.is_empty() => format!("{manager}/{sub}"),
                _ => manager,
            }
        })
        .collect();
    managers.sort();
    managers.dedup();
    managers
}

/// resourceVersion and field managers of each object, keyed by kind and name.
type Children = BTreeMap<String, (String, Vec<String>)>;

async fn list_meta<K>(api: Api<K>, selector: &str, kind: &str, into: &mut Children)
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    let listed = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap_or_else(|e| panic!("list {kind}: {e}"));
    for object in listed.items {
        let meta = object.meta();
        let name = format!("{kind}/{}", meta.name.clone().unwrap_or_default());
        let rv = meta.resource_version.clone().unwrap_or_default();
        into.insert(name, (rv, managers(meta)));
    }
}

/// Every child of the Microservice: Deployments, Services, the PDB and the HTTPRoute.
async fn children(h: &Harness) -> Children {
    let selector = format!("app.kubernetes.io/instance={}", h.name);
    let mut all = Children::new();
    list_meta(h.deployments(), &selector, "Deployment", &mut all).await;
    list_meta(h.services(), &selector, "Service", &mut all).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), &h.ns);
    list_meta(pdbs, &selector, "PodDisruptionBudget", &mut all).await;
    let routes: Api<HttpRoute> = Api::namespaced(h.client.clone(), &h.ns);
    if let Some(route) = routes.get_opt(&h.name).await.expect("get the route") {
        let rv = route.metadata.resource_version.clone().unwrap_or_default();
        all.insert(
            format!("HTTPRoute/{}", h.name),
            (rv, managers(&route.metadata)),
        );
    }
    all
}

/// Applies the manifest as Flux's kustomize-controller does: server-side, its own field
/// manager, no `--force-conflicts`. Fails the test if the API server reports a conflict.
async fn flux_apply(h: &Harness, manifest: &Value) {
    let path = scratch("manifest.json");
    std::fs::write(&path, manifest.to_string()).expect("write the manifest");
    let path_text = path.to_string_lossy().into_owned();
    let manager = format!("--field-manager={FLUX}");
    let args = [
        "apply",
        "--server-side",
        &manager,
        "-n",
        &h.ns,
        "-f",
        &path_text,
    ];
    let (ok, stdout, stderr) = support::try_kubectl(&args).await;
    let _ = std::fs::remove_file(&path);
    assert!(ok, "kubectl {args:?} failed: {stderr}{stdout}");
    assert!(!stderr.contains("conflict"), "{stderr}");
}

/// Field manager `manager` gives up every field it applied to the Microservice: it applies
/// a manifest that names only the object.
async fn hand_over(h: &Harness, manager: &str) {
    let empty = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "Microservice",
        "metadata": {"name": h.name},
    });
    let path = scratch("empty.json");
    std::fs::write(&path, empty.to_string()).expect("write the manifest");
    let path_text = path.to_string_lossy().into_owned();
    let manager = format!("--field-manager={manager}");
    let args = [
        "apply",
        "--server-side",
        &manager,
        "-n",
        &h.ns,
        "-f",
        &path_text,
    ];
    support::kubectl(&args).await;
    let _ = std::fs::remove_file(&path);
}

/// Waits until the operator has finished two more reconciles: the second began after
/// this call, so it saw everything written before it.
async fn two_reconciles_later(h: &Harness) {
    let count = |metrics: &str| metric_sum(metrics, "weir_reconciles_total", "");
    let before = count(&h.operator.metrics().await);
    support::eventually(DEADLINE, "two more reconciles", || async {
        (count(&h.operator.metrics().await) >= before + 2.0).then_some(())
    })
    .await;
}

/// What the applies must not move: the spec's generation and where the release stands.
fn release_position(ms: &Microservice) -> Value {
    let status = ms.status.clone().unwrap_or_default();
    json!({
        "generation": ms.metadata.generation,
        "phase": status.phase,
        "activeSlot": status.active_slot,
        "stableRevision": status.stable_revision,
        "release": status.release.map(|r| json!({
            "revision": r.revision,
            "stepIndex": r.step_index,
            "stepStartedAt": r.step_started_at,
            "weight": r.weight,
            "weightVerified": r.weight_verified,
            "paused": r.paused,
        })),
    })
}

/// Applies `manifest` five times as Flux would, each after the operator reconciled the
/// last, and checks that nothing Weir manages moved and that no child gained a manager.
async fn apply_five_times(h: &Harness, manifest: &Value, when: &str) {
    let before = h.ms().await;
    let position = release_position(&before);
    let owned = children(h).await;
    for (name, (_, managers)) in &owned {
        let foreign: Vec<&String> = managers
            .iter()
            .filter(|m| !CHILD_MANAGERS.contains(&m.split('/').next().unwrap_or_default()))
            .collect();
        assert!(foreign.is_empty(), "{when}: {name} managed by {foreign:?}");
    }
    for round in 1..=5 {
        flux_apply(h, manifest).await;
        two_reconciles_later(h).await;
        let ms = h.ms().await;
        assert_eq!(
            release_position(&ms),
            position,
            "{when}, apply {round}: the release moved"
        );
        let now = children(h).await;
        assert_eq!(now, owned, "{when}, apply {round}: a child changed");
        let flux_owns_spec = ms.metadata.managed_fields.iter().flatten().any(|e| {
            e.manager.as_deref() == Some(FLUX)
                && e.operation.as_deref() == Some("Apply")
                && e.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.get("f:spec").is_some())
        });
        assert!(flux_owns_spec, "{when}: {FLUX} owns no part of the spec");
    }
    // Weir writes only the status of the Microservice: Flux's spec can never conflict
    // with it.
    let ms = h.ms().await;
    let weir_spec = ms.metadata.managed_fields.iter().flatten().find(|e| {
        e.manager.as_deref() == Some("weir")
            && e.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").is_some())
    });
    assert!(
        weir_spec.is_none(),
        "{when}: Weir owns spec fields: {weir_spec:?}"
    );
}

/// Waits until a slot's Deployment and the PDB have caught up with their pods, so that
/// only a write by someone could change them.
async fn wait_settled(h: &Harness, slots: &[Slot]) {
    for slot in slots {
        let name = h.slot(*slot);
        let what = format!("Deployment {name} settled");
        let settled = |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let s = d.status.clone().unwrap_or_default();
                s.observed_generation == d.metadata.generation
                    && s.replicas.unwrap_or(0) == want
                    && s.ready_replicas.unwrap_or(0) == want
                    && s.available_replicas.unwrap_or(0) == want
                    && s.updated_replicas.unwrap_or(0) == want
            })
        };
        let show = |d: &Deployment| format!("{:?}", d.status);
        support::release::wait_seen(&h.deployments(), &name, DEADLINE, &what, show, settled).await;
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), &h.ns);
    let what = format!("PodDisruptionBudget {} settled", h.name);
    let show = |p: &PodDisruptionBudget| format!("{:?}", p.status);
    support::release::wait_seen(&pdbs, &h.name, DEADLINE, &what, show, |p| {
        p.is_some_and(|p| {
            p.status.as_ref().is_some_and(|s| {
                s.observed_generation == p.metadata.generation
                    && s.current_healthy == s.expected_pods
            })
        })
    })
    .await;
}

#[tokio::test]
async fn flux_applying_the_manifest_again_and_again_resets_nothing_weir_manages() {
    with_temp_ns(|client, ns| async move {
        let steps = json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]);
        let rollout = canary(steps);
        let spec = json!({"image": CHECKOUT_1, "rollout": rollout});
        let flags = ["--resync-seconds", "1"];
        let h = Harness::start_with_flags(&client, &ns, "flux", spec, &flags).await;
        // What Git holds once the new version is committed, as Flux renders it.
        let manifest = json!({
            "apiVersion": "weir.dev/v1alpha1",
            "kind": "Microservice",
            "metadata": {"name": h.name, "namespace": ns},
            "spec": {
                "image": CHECKOUT_2,
                "replicas": 3,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                "rollout": rollout,
            }
        });
        // The harness deployed the first version as field manager `gitops`; Flux takes the
        // manifest over as it would from another tool: it applies the same manifest, then the
        // old manager applies none of it.
        let mut first = manifest.clone();
        first["spec"]["image"] = json!(CHECKOUT_1);
        flux_apply(&h, &first).await;
        hand_over(&h, GITOPS).await;
        two_reconciles_later(&h).await;
        assert_eq!(h.status().await.phase, Some(Phase::Healthy));

        // The new version reaches Git; Flux applies it and the release starts.
        flux_apply(&h, &manifest).await;
        let ms = h.wait_paused_at(1).await;
        assert_eq!(release(&ms).weight, 30);
        let revision = release(&ms).revision.clone();
        h.wait_ready_pods(Slot::Green, 1).await;
        wait_settled(&h, &[Slot::Blue, Slot::Green]).await;
        two_reconciles_later(&h).await;
        apply_five_times(&h, &manifest, "paused at 30%").await;

        let promote = h.act("promote").await;
        h.wait_handled(&promote).await;
        let ms = h.wait_paused_at(3).await;
        assert_eq!(release(&ms).weight, 60);
        h.wait_ready_pods(Slot::Green, 2).await;
        wait_settled(&h, &[Slot::Blue, Slot::Green]).await;
        two_reconciles_later(&h).await;
        apply_five_times(&h, &manifest, "paused at 60%").await;

        let promote = h.act("promote").await;
        h.wait_handled(&promote).await;
        h.wait_healthy_on(&revision).await;
        h.wait("the old slot scaled down", |ms| {
            ms.status
                .as_ref()
                .is_some_and(|s| s.scale_down_at.is_none())
        })
        .await;
        let blue = h.slot(Slot::Blue);
        let gone = |d: Option<&Deployment>| d.is_none();
        support::release::wait_seen(
            &h.deployments(),
            &blue,
            DEADLINE,
            "blue deleted",
            |_| String::new(),
            gone,
        )
        .await;
        wait_settled(&h, &[Slot::Green]).await;
        two_reconciles_later(&h).await;
        apply_five_times(&h, &manifest, "after the promotion").await;
        let services: Api<Service> = h.services();
        assert!(services.get_opt(&h.name).await.unwrap().is_some());
    })
    .await;
}
