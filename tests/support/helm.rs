//! Chart tests: helm and kubectl on `charts/weir`, namespaces beside the test's own, a
//! kubeconfig that authenticates as a ServiceAccount (a TokenRequest token, nothing else),
//! the operator binary run as that identity with the arguments the chart gives it, what an
//! identity may do (SelfSubjectRulesReview), and stand-ins for the Prometheus Operator's
//! CRDs so that a ServiceMonitor and a PrometheusRule can be dry-run on the server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::http::{self, free_port};
use super::operator::metric_sum;

/// The chart under test.
pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/weir");

/// Where this test binary keeps values files, kubeconfigs and operator logs.
fn scratch(dir: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&path).expect("scratch dir");
    path
}

/// Writes `contents` to a fresh file under the scratch dir `dir`; returns its path.
pub fn scratch_file(dir: &str, name: &str, contents: &str) -> String {
    let path = scratch(dir).join(super::unique_name(name));
    std::fs::write(&path, contents).expect("write scratch file");
    path.to_string_lossy().into_owned()
}

/// Runs a program and returns whether it succeeded, its stdout and its stderr.
pub async fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program} (is .cluster/bin on PATH?): {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs helm (the cluster's own, from PATH) and returns whether it succeeded, stdout, stderr.
pub async fn try_helm(args: &[&str]) -> (bool, String, String) {
    run("helm", args).await
}

/// Runs helm and returns its stdout; panics with its stderr on failure.
pub async fn helm(args: &[&str]) -> String {
    let (ok, stdout, stderr) = try_helm(args).await;
    assert!(ok, "helm {args:?} failed: {stderr}{stdout}");
    stdout
}

/// A values file holding `values`, for `helm -f`.
pub fn values_file(values: &Value) -> String {
    let text = serde_json::to_string_pretty(values).expect("serialize values");
    scratch_file("helm-values", "values.json", &text)
}

/// `helm template` of the chart as `release` in `ns` with `values`; panics on failure.
pub async fn template(release: &str, ns: &str, values: &Value) -> String {
    let file = values_file(values);
    helm(&["template", release, CHART, "-n", ns, "-f", &file]).await
}

/// Applies the chart's preset MetricTemplates (release `weir`) as Helm would; returns the
/// name prefix of the templates (`weir-gateway-...`).
pub async fn apply_metric_template_presets(client: &kube::Client) -> &'static str {
    let values =
        serde_json::json!({"metricTemplatePresets": {"enabled": true, "gateway": "traefik"}});
    let manifest = template("weir", "weir-system", &values).await;
    super::install_crds(client).await;
    let templates: kube::Api<weir::api::MetricTemplate> = kube::Api::all(client.clone());
    let params = kube::api::PatchParams::apply("helm").force();
    for document in documents(&manifest) {
        if document["kind"] != "MetricTemplate" {
            continue;
        }
        let name = document["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_string();
        templates
            .patch(&name, &params, &kube::api::Patch::Apply(&document))
            .await
            .unwrap_or_else(|e| panic!("apply the preset {name}: {e}"));
    }
    "weir"
}

/// The YAML documents of a manifest stream, empty ones left out.
pub fn documents(manifest: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(manifest)
        .map(|document| {
            <Value as serde::Deserialize>::deserialize(document).expect("a YAML document")
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// The document of `kind` named `name`; panics naming what the manifest holds otherwise.
pub fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(documents)))
}

/// "Kind namespace/name" of every document, sorted.
pub fn kinds(documents: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = documents
        .iter()
        .map(|d| {
            let meta = &d["metadata"];
            let namespace = meta["namespace"].as_str().unwrap_or("");
            let name = meta["name"].as_str().unwrap_or("");
            format!("{} {namespace}/{name}", d["kind"].as_str().unwrap_or(""))
        })
        .collect();
    kinds.sort();
    kinds
}

/// A namespace beside the test's own, labelled like it, deleted when dropped.
pub struct ExtraNamespace {
    pub name: String,
}

impl ExtraNamespace {
    pub async fn create(client: &Client, prefix: &str) -> ExtraNamespace {
        let name = super::unique_name(prefix);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(name.clone());
        namespace.metadata.labels =
            Some([(super::TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into());
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        ExtraNamespace { name }
    }
}

impl Drop for ExtraNamespace {
    fn drop(&mut self) {
        // Drop cannot await; kubectl returns at once with --wait=false.
        let _ = std::process::Command::new("kubectl")
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes a release's cluster-scoped objects (ClusterRole and ClusterRoleBinding named
/// `name`) when dropped, so a test that fails before `helm uninstall` leaves none behind; its
/// namespaced objects go with the test's namespaces.
pub struct ClusterScopedCleanup {
    pub name: String,
}

impl Drop for ClusterScopedCleanup {
    fn drop(&mut self) {
        let objects = [
            format!("clusterrole/{}", self.name),
            format!("clusterrolebinding/{}", self.name),
        ];
        let _ = std::process::Command::new("kubectl")
            .args(["delete", "--ignore-not-found", "--wait=false"])
            .args(&objects)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes a kubeconfig whose only credential is a TokenRequest token of ServiceAccount
/// `sa` in `ns`: the API server and its CA come from the test's own kubeconfig, its client
/// certificate does not. Returns the file's path.
pub async fn service_account_kubeconfig(ns: &str, sa: &str) -> String {
    let token = super::kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]).await;
    let view = super::kubectl(&[
        "config",
        "view",
        "--raw",
        "--minify",
        "--flatten",
        "-o",
        "json",
    ])
    .await;
    let view: Value = serde_json::from_str(&view).expect("kubectl config view is JSON");
    let cluster = &view["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .expect("the kubeconfig names a server");
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .expect("the flattened kubeconfig carries the CA");
    let user = format!("system:serviceaccount:{ns}:{sa}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token.trim()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "cluster", "user": user, "namespace": ns}}],
        "current-context": "sa",
    });
    let text = serde_json::to_string_pretty(&config).expect("serialize kubeconfig");
    scratch_file("kubeconfigs", &format!("{ns}-{sa}.json"), &text)
}

/// A client that authenticates with the kubeconfig at `path`.
pub async fn client_from(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config from kubeconfig");
    Client::try_from(config).expect("client from kubeconfig")
}

/// kubectl as the identity of the kubeconfig at `kubeconfig`.
pub async fn kubectl_as(kubeconfig: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--kubeconfig", kubeconfig];
    all.extend_from_slice(args);
    super::try_kubectl(&all).await
}

/// What the client's identity may do on resources in `ns`, from a SelfSubjectRulesReview:
/// one entry per group, resource, verb and (when narrowed) resource name, as
/// `verb group/resource[name]`.
pub async fn granted(client: &Client, ns: &str) -> BTreeSet<String> {
    let reviews: Api<SelfSubjectRulesReview> = Api::all(client.clone());
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(ns.to_string()),
        },
        ..Default::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .expect("create a SelfSubjectRulesReview");
    let status = answer.status.expect("the review has a status");
    assert!(
        !status.incomplete,
        "the rules review is incomplete: {:?}",
        status.evaluation_error
    );
    let mut rules = BTreeSet::new();
    for rule in status.resource_rules {
        let names = rule.resource_names.unwrap_or_default();
        let names: Vec<String> = if names.is_empty() {
            vec![String::new()]
        } else {
            names.into_iter().map(|n| format!("[{n}]")).collect()
        };
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for name in &names {
                        rules.insert(format!("{verb} {group}/{resource}{name}"));
                    }
                }
            }
        }
    }
    rules
}

/// Expands `verbs` on `group/resource` (with `[name]` when narrowed) into `granted` form.
pub fn rules(group: &str, resource: &str, verbs: &[&str]) -> BTreeSet<String> {
    verbs
        .iter()
        .map(|verb| format!("{verb} {group}/{resource}"))
        .collect()
}

/// The container arguments and the literal environment the installed chart gives the
/// operator (Deployment `name` in `ns`).
pub async fn chart_operator(
    client: &Client,
    ns: &str,
    name: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = deployments
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get the chart's Deployment {name}: {e}"));
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("the Deployment has a pod spec");
    let container = pod
        .containers
        .into_iter()
        .find(|c| c.name == "operator")
        .expect("a container named operator");
    let env = container
        .env
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect();
    (container.args.unwrap_or_default(), env)
}

/// The operator binary run as the identity of a kubeconfig, with no other credential or
/// setting in its environment; killed when dropped.
pub struct OperatorAs {
    pub child: Child,
    pub metrics_addr: String,
    pub identity: String,
    pub log: PathBuf,
}

impl OperatorAs {
    /// Starts `weir run` with `args` (what the chart passes), `env` (the chart's literal
    /// variables) and `POD_NAME=identity`, and waits until `/readyz` answers 200.
    pub async fn start(
        kubeconfig: &str,
        args: &[String],
        env: &[(String, String)],
        identity: &str,
    ) -> OperatorAs {
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let log = scratch("operator-logs").join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .args(args)
            .arg(format!("--metrics-addr={metrics_addr}"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", identity)
            .stdout(Stdio::from(file.try_clone().expect("log file")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("start weir run");
        let mut operator = OperatorAs {
            child,
            metrics_addr,
            identity: identity.to_string(),
            log,
        };
        let what = format!("the operator {identity}'s /readyz to answer 200");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http::get(&operator.metrics_addr, "/readyz").await;
            if ready.is_some_and(|(status, _)| status == 200) {
                break;
            }
            if let Ok(Some(exit)) = operator.child.try_wait() {
                panic!("{what}: it exited with {exit}: {}", operator.log_text());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} did not happen within 60s: {}",
                operator.log_text()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        operator
    }

    /// Waits until the operator has finished a reconcile (its `/metrics` counts one).
    pub async fn wait_reconciled(&self) {
        let what = format!("a successful reconcile by {}", self.identity);
        super::eventually(Duration::from_secs(60), &what, || async {
            let (_, metrics) = http::get(&self.metrics_addr, "/metrics").await?;
            let done = metric_sum(&metrics, "weir_reconciles_total", "result=\"success\"");
            (done > 0.0).then_some(())
        })
        .await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits until the process has exited.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the operator exits within 30s of SIGTERM")
            .expect("the operator's exit status");
    }
}

/// Creates the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs unless the
/// cluster has them, as stand-ins: structural schemas of the fields the chart uses, with
/// the upstream field names, types and duration pattern, and nothing else, so a server-side
/// dry-run with strict field validation refuses a misspelt or misplaced field.
pub async fn install_monitoring_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [service_monitor_crd(), prometheus_rule_crd()] {
        let crd: CustomResourceDefinition =
            serde_json::from_value(crd).expect("a valid stand-in CRD");
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => panic!("create the stand-in CRD {name}: {e}"),
        }
        let what = format!("the CRD {name} to be established");
        let established = wait::conditions::is_crd_established();
        super::wait_for(
            crds.clone(),
            &name,
            Duration::from_secs(30),
            &what,
            established,
        )
        .await;
    }
}

/// The Prometheus Operator's duration pattern (monitoring.coreos.com/v1 `Duration`).
const DURATION: &str =
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$";

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

fn stand_in_crd(plural: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.monitoring.coreos.com"),
            "annotations": {"weir.dev/test-stand-in": "the fields of the Prometheus Operator's CRD that the Weir chart uses"}
        },
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec
                    }
                }}
            }]
        }
    })
}

fn service_monitor_crd() -> Value {
    let label_selector = json!({
        "type": "object",
        "properties": {
            "matchLabels": string_map(),
            "matchExpressions": {"type": "array", "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}}
                }
            }}
        }
    });
    stand_in_crd(
        "servicemonitors",
        "ServiceMonitor",
        json!({
            "type": "object",
            "required": ["selector"],
            "properties": {
                "selector": label_selector,
                "namespaceSelector": {"type": "object", "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}}
                }},
                "jobLabel": {"type": "string"},
                "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                    "port": {"type": "string"},
                    "path": {"type": "string"},
                    "scheme": {"type": "string", "enum": ["http", "https"]},
                    "interval": {"type": "string", "pattern": DURATION},
                    "scrapeTimeout": {"type": "string", "pattern": DURATION},
                    "honorLabels": {"type": "boolean"}
                }}}
            }
        }),
    )
}

fn prometheus_rule_crd() -> Value {
    stand_in_crd(
        "prometheusrules",
        "PrometheusRule",
        json!({
            "type": "object",
            "properties": {
                "groups": {"type": "array", "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": {"type": "string", "pattern": DURATION},
                        "rules": {"type": "array", "items": {
                            "type": "object",
                            "required": ["expr"],
                            "properties": {
                                "alert": {"type": "string"},
                                "record": {"type": "string"},
                                "expr": {"x-kubernetes-int-or-string": true},
                                "for": {"type": "string", "pattern": DURATION},
                                "keep_firing_for": {"type": "string", "minLength": 1, "pattern": DURATION},
                                "labels": string_map(),
                                "annotations": string_map()
                            }
                        }}
                    }
                }}
            }
        }),
    )
}
