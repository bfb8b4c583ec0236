//! peers (only when named, `BENCH=peers`): Weir, Flagger and Argo Rollouts side by side on
//! this machine. For each N (100 and 1000, or N when set) each controller runs alone on a
//! fresh local cluster, with leader election off, its CRDs applied and equivalent objects
//! (peers/tools.rs). Figures per controller and N:
//!   - from one `kubectl apply --server-side` of the N services to all converged, by a list of
//!     the namespace every 0.5 s (what converged means for each is in peers/tools.rs);
//!   - the controller's RSS: the highest sample (every 0.2 s) and at the end of the idle window;
//!   - its API requests and writes per service from the apply until 5 s after all converged,
//!     from the audit log by the start of its userAgent (Leases apart; Events are writes, and
//!     said how many);
//!   - its writes (and requests) per minute over the BENCH_IDLE_SECONDS that follow;
//!   - its CPU seconds until converged and over the idle window;
//!   - the time from the image change of one service (RELEASES of them, spread over the N, one
//!     after the other) until as many pods of the new image are Ready as the first canary step
//!     asks for, seen by a watch of the Pods (peers/pods.rs); the median and the slowest.
//!
//! The part restarts the cluster in WEIR_CLUSTER_DIR for every controller and N (through
//! hack/cluster-down.sh and hack/cluster-up.sh, without the data plane), so it runs last.
//! Flagger and Argo Rollouts come from the tool cache (`hack/build-tools.sh flagger
//! argo-rollouts`, which hack/bench.sh runs when this part is selected).

mod controller;
mod pods;
mod requests;
mod timeline;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::audit;
use crate::cluster::{self, Bench, now};
use crate::core::rss_samples;
use crate::report::{self, fmt, median, num, rnd, round};
use crate::settings::Settings;
use controller::{Controller, free_port};
use pods::PodWatch;
use tools::{IMAGE_REPO, TOOLS, Tool};

/// The sizes compared when N is not set.
const SIZES: [u64; 2] = [100, 1000];
/// Services whose image changes, for the first-step figure (at most N).
const RELEASES: u64 = 5;
/// After a controller answers its health check, before the clock starts: its caches fill.
const STARTUP_SECONDS: u64 = 5;
/// Requests are counted until this long after all converged: the last status writes.
const SETTLE_SECONDS: f64 = 5.0;
const NAMESPACE: &str = "peers";
const POLL: Duration = Duration::from_millis(500);

/// Where the controllers and their CRDs are, and the versions compared.
struct Setup {
    root: PathBuf,
    flagger: PathBuf,
    argo_rollouts: PathBuf,
    versions: BTreeMap<String, String>,
}

impl Setup {
    fn find(settings: &Settings) -> Setup {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let env_file = root.join("hack/versions.env");
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| die!("read {}: {e}", env_file.display()));
        let versions = parse_env(&text);
        let version = |key: &str| {
            versions
                .get(key)
                .cloned()
                .unwrap_or_else(|| die!("{key} is not in {}", env_file.display()))
        };
        let cache = std::env::var("WEIR_TOOLS_CACHE")
            .ok()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var("HOME")
                    .ok()
                    .map(|h| Path::new(&h).join(".cache/weir/tools"))
            })
            .unwrap_or_else(|| die!("neither WEIR_TOOLS_CACHE nor HOME is set"));
        let setup = Setup {
            flagger: cache.join(format!("flagger-{}", version("FLAGGER_VERSION"))),
            argo_rollouts: cache.join(format!(
                "argo-rollouts-{}",
                version("ARGO_ROLLOUTS_VERSION")
            )),
            root,
            versions,
        };
        for binary in [
            setup.flagger.join("flagger"),
            setup.argo_rollouts.join("rollouts-controller"),
        ] {
            if !binary.is_file() {
                die!(
                    "{} is missing: run hack/build-tools.sh flagger argo-rollouts",
                    binary.display()
                );
            }
        }
        if !settings.operator.is_file() {
            die!("the operator {} is missing", settings.operator.display());
        }
        setup
    }

    fn crds(&self, tool: Tool) -> PathBuf {
        match tool {
            Tool::Weir => self.root.join("crds"),
            Tool::Flagger => self.flagger.join("crds"),
            Tool::ArgoRollouts => self.argo_rollouts.join("crds"),
        }
    }

    fn version(&self, tool: Tool) -> String {
        match tool {
            Tool::Weir => format!("v{}", env!("CARGO_PKG_VERSION")),
            Tool::Flagger => self.versions["FLAGGER_VERSION"].clone(),
            Tool::ArgoRollouts => self.versions["ARGO_ROLLOUTS_VERSION"].clone(),
        }
    }

    /// The program, its arguments and the URL that answers 200 once it runs: each with leader
    /// election off and its endpoints on free loopback ports, otherwise its shipped defaults
    /// (Flagger: the log level its Helm chart sets; a Prometheus address nothing answers on,
    /// which Flagger only logs, as no Canary here has metrics).
    fn command(&self, tool: Tool, settings: &Settings) -> (PathBuf, Vec<String>, String) {
        let kubeconfig = settings
            .cluster_dir
            .join("kubeconfig")
            .display()
            .to_string();
        let port = free_port();
        let to_strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match tool {
            Tool::Weir => (
                settings.operator.clone(),
                to_strings(&[
                    "run",
                    "--metrics-addr",
                    &format!("127.0.0.1:{port}"),
                    "--leader-elect=false",
                ]),
                format!("http://127.0.0.1:{port}/readyz"),
            ),
            Tool::Flagger => (
                self.flagger.join("flagger"),
                to_strings(&[
                    &format!("-kubeconfig={kubeconfig}"),
                    "-mesh-provider=kubernetes",
                    &format!("-metrics-server=http://127.0.0.1:{}", free_port()),
                    "-log-level=info",
                    &format!("-port={port}"),
                    "-enable-leader-election=false",
                ]),
                format!("http://127.0.0.1:{port}/healthz"),
            ),
            Tool::ArgoRollouts => (
                self.argo_rollouts.join("rollouts-controller"),
                to_strings(&[
                    &format!("--kubeconfig={kubeconfig}"),
                    "--leader-elect=false",
                    &format!("--healthzPort={port}"),
                    &format!("--metricsPort={}", free_port()),
                ]),
                format!("http://127.0.0.1:{port}/healthz"),
            ),
        }
    }
}

/// `KEY=VALUE` lines of a shell file, comments and blank lines skipped.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// The sizes to compare: N alone when it is set, else 100 and 1000.
fn sizes(settings: &Settings) -> Vec<u64> {
    let n_set = std::env::var("N").is_ok_and(|v| !v.is_empty());
    if n_set {
        vec![settings.n]
    } else {
        SIZES.to_vec()
    }
}

/// `count` of `names`, spread evenly over them.
fn spread(names: &[String], count: u64) -> Vec<String> {
    let count = (count as usize).min(names.len()).max(1);
    let stride = names.len() as f64 / count as f64;
    (0..count)
        .map(|i| names[(i as f64 * stride) as usize].clone())
        .collect()
}

pub async fn run(bench: &Bench, dir: &Path) {
    let s = &bench.settings;
    let setup = Setup::find(s);
    let kubeconfig = s.cluster_dir.join("kubeconfig");
    if std::env::var_os("KUBECONFIG").is_none_or(|k| Path::new(&k) != kubeconfig) {
        die!(
            "peers restarts the cluster in {} for each controller: KUBECONFIG must be {}",
            s.cluster_dir.display(),
            kubeconfig.display()
        );
    }
    let sizes = sizes(s);
    let mut results = Vec::new();
    for &n in &sizes {
        for tool in TOOLS {
            let run_dir = dir.join(format!("{}-{n}", tool.key()));
            std::fs::create_dir_all(&run_dir)
                .unwrap_or_else(|e| die!("create {}: {e}", run_dir.display()));
            log!("peers: {} with N={n}, on a fresh cluster", tool.title());
            results.push(measure(s, &setup, tool, n, &run_dir).await);
            // What is measured so far stays, should a later run fail.
            report::write_json(
                &dir.join("partial.json"),
                &summary(s, &setup, &sizes, &results),
            );
        }
    }
    let out = summary(s, &setup, &sizes, &results);
    report::write_json(&s.out.join("peers.json"), &out);
    let markdown = markdown(&out);
    std::fs::write(dir.join("peers.md"), &markdown)
        .unwrap_or_else(|e| die!("write {}: {e}", dir.join("peers.md").display()));
    println!("\n{markdown}");
}

/// Everything the part measured, with what it ran on.
fn summary(s: &Settings, setup: &Setup, sizes: &[u64], results: &[Value]) -> Value {
    let versions: BTreeMap<String, String> = TOOLS
        .iter()
        .map(|t| (t.key().to_string(), setup.version(*t)))
        .chain([(
            "kubernetes".to_string(),
            setup
                .versions
                .get("KUBERNETES_VERSION")
                .cloned()
                .unwrap_or_default(),
        )])
        .collect();
    json!({
        "sizes": sizes,
        "replicas": s.replicas,
        "idle_seconds": s.idle_seconds,
        "releases": RELEASES,
        "versions": versions,
        "machine": machine(),
        "command": command(),
        "converged_when": by_tool(|t| t.converged_meaning().into()),
        "user_agent_prefixes": by_tool(|t| t.user_agent_prefix().into()),
        "release_models": by_tool(Tool::release_model),
        "results": results,
    })
}

/// A value per controller, by its key.
fn by_tool(value: fn(Tool) -> String) -> BTreeMap<&'static str, String> {
    TOOLS.iter().map(|t| (t.key(), value(*t))).collect()
}

/// The command that reproduces this run.
fn command() -> String {
    let mut settings = Vec::new();
    for name in ["N", "BENCH_REPLICAS", "BENCH_IDLE_SECONDS"] {
        if let Ok(value) = std::env::var(name)
            && !value.is_empty()
        {
            settings.push(format!("{name}={value}"));
        }
    }
    settings.push("BENCH=peers make bench".into());
    settings.join(" ")
}

/// Cores, memory and CPU model of this machine.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok());
    json!({
        "cores": cores,
        "memory_gib": memory_kib.map(|k| round(k / 1024.0 / 1024.0, 1)),
        "cpu": model,
    })
}

/// One controller, one N, on a cluster of its own.
async fn measure(s: &Settings, setup: &Setup, tool: Tool, n: u64, dir: &Path) -> Value {
    fresh_cluster(s, dir).await;
    let client = crate::support::client().await;
    apply_crds(s, &setup.crds(tool)).await;
    cluster::fresh_namespace(&client, NAMESPACE).await;
    let (program, args, health) = setup.command(tool, s);
    let controller =
        Controller::start(tool.key(), &program, &args, &health, dir, &s.cluster_dir).await;
    tokio::time::sleep(Duration::from_secs(STARTUP_SECONDS)).await;
    let deadline = n.max(300) as f64;

    // Converge: one apply of every object, then a list every 0.5 s.
    let names = crate::release::names("peer", n);
    let objects: Vec<String> = names
        .iter()
        .flat_map(|name| tool.objects(name, s.replicas))
        .map(|o| serde_yaml::to_string(&o).unwrap_or_else(|e| die!("YAML of {o}: {e}")))
        .collect();
    let file = dir.join("objects.yaml");
    std::fs::write(&file, objects.join("---\n"))
        .unwrap_or_else(|e| die!("write {}: {e}", file.display()));
    let cpu_start = controller.cpu_seconds();
    let start = now();
    kubectl(
        s,
        &[
            "apply",
            "--server-side",
            "--field-manager=weir-bench",
            "-n",
            NAMESPACE,
            "-f",
        ],
        &file,
    )
    .await;
    let applied = now();
    log!(
        "{}: applied {n} services in {:.1}s, waiting until converged",
        tool.title(),
        applied - start
    );
    let converged = wait_converged(&client, tool, n, &controller, start, start + deadline).await;
    let cpu_converged = controller.cpu_seconds();
    log!(
        "{}: {n} converged {:.2}s after the apply",
        tool.title(),
        converged - start
    );

    // Idle: nothing changes; the controller's writes now are its steady cost.
    let idle_start = converged + SETTLE_SECONDS;
    tokio::time::sleep(Duration::from_secs_f64((idle_start - now()).max(0.0))).await;
    let cpu_idle_start = controller.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(s.idle_seconds)).await;
    let idle_end = now();
    let cpu_idle_end = controller.cpu_seconds();
    let settled_kib = controller.rss_kib();

    // Releases: the time until the first step is in effect.
    let releases = first_steps(&client, tool, &names, s.replicas, &controller, deadline).await;
    let cpu_releases = controller.cpu_seconds() - cpu_idle_end;
    let rss_path = controller.rss_path.clone();
    controller.stop().await;

    let rss = rss_samples(&rss_path);
    let Some(peak_kib) = rss.iter().map(|(_, kib)| *kib).max() else {
        die!("{}: no RSS sample in {}", tool.title(), dir.display());
    };
    let entries = requests::all_entries();
    let prefix = tool.user_agent_prefix();
    let converging = requests::by_agent(&entries, prefix, start, converged + SETTLE_SECONDS);
    if converging.is_empty() {
        die!(
            "{}: no request with a userAgent starting with {prefix} in the audit log \
             while it converged; the clients seen: {:?}",
            tool.title(),
            requests::agents(&entries)
        );
    }
    let idle = requests::by_agent(&entries, prefix, idle_start, idle_end);
    let (converging_counts, idle_counts) = (requests::count(&converging), requests::count(&idle));
    let not_lease = |r: &&audit::Request| !r.is_lease;
    let writes = |r: &&audit::Request| !r.is_lease && r.is_write();
    let per_service = |count: usize| round(count as f64 / n as f64, 2);
    let idle_minutes = (idle_end - idle_start) / 60.0;
    let first_step: Vec<Option<f64>> = releases.iter().map(|r| num(r, "seconds")).collect();
    let timelines = timeline::of_releases(&entries, NAMESPACE, prefix, &releases);
    let converging_breakdown = audit::breakdown(converging.iter().filter(not_lease));
    let idle_breakdown = audit::breakdown(idle.iter().filter(writes));
    let result = json!({
        "tool": tool.key(),
        "title": tool.title(),
        "version": setup.version(tool),
        "n": n,
        "replicas": s.replicas,
        "apply_seconds": round(applied - start, 3),
        "converge_seconds": round(converged - start, 3),
        "peak_rss_mib": round(peak_kib as f64 / 1024.0, 1),
        "settled_rss_mib": round(settled_kib as f64 / 1024.0, 1),
        "rss_samples": rss.len(),
        "requests_per_service": per_service(converging_counts.requests),
        "writes_per_service": per_service(converging_counts.writes),
        "event_writes_per_service": per_service(converging_counts.event_writes),
        "requests_by_verb_resource": audit::breakdown_json(&converging_breakdown),
        "lease_requests": converging_counts.leases + idle_counts.leases,
        "idle_seconds": round(idle_end - idle_start, 1),
        "idle_writes": idle_counts.writes,
        "idle_event_writes": idle_counts.event_writes,
        "idle_writes_per_minute": round(idle_counts.writes as f64 / idle_minutes, 1),
        "idle_writes_by_verb_resource": audit::breakdown_json(&idle_breakdown),
        "idle_requests": idle_counts.requests,
        "idle_requests_per_minute": round(idle_counts.requests as f64 / idle_minutes, 1),
        "cpu_seconds_converge": round(cpu_converged - cpu_start, 2),
        "cpu_seconds_idle": round(cpu_idle_end - cpu_idle_start, 2),
        "cpu_seconds_releases": round(cpu_releases, 2),
        "first_step_pods": tool.first_step_pods(s.replicas),
        "median_first_step_seconds": rnd(median(first_step.iter().copied()), 3),
        "max_first_step_seconds": rnd(first_step.iter().flatten().copied().reduce(f64::max), 3),
        "first_step_timeline": timeline::medians(&timelines),
        "releases": releases,
        "release_timelines": timelines,
    });
    log!(
        "{} N={n}: converged in {:.1}s; {} requests ({} writes) per service; \
         {} idle writes per minute; first step {} s (median)",
        tool.title(),
        converged - start,
        result["requests_per_service"],
        result["writes_per_service"],
        result["idle_writes_per_minute"],
        fmt(num(&result, "median_first_step_seconds"), 1, "")
    );
    result
}

/// Stops the cluster of WEIR_CLUSTER_DIR and starts it anew, without the data plane; the
/// scripts' output goes to `<dir>/cluster.log`.
async fn fresh_cluster(s: &Settings, dir: &Path) {
    let log_path = dir.join("cluster.log");
    let log_file = report::create(&log_path);
    for script in ["hack/cluster-down.sh", "hack/cluster-up.sh"] {
        let out = log_file.try_clone().unwrap_or_else(|e| die!("{e}"));
        let err = log_file.try_clone().unwrap_or_else(|e| die!("{e}"));
        let status =
            tokio::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
                .env("WEIR_CLUSTER_DIR", &s.cluster_dir)
                .env("WEIR_DATA_PLANE", "0")
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .status()
                .await;
        if !status.is_ok_and(|st| st.success()) {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            die!(
                "{script} failed; end of {}:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// `kubectl <args> <file>` of the cluster; fails the benchmark when it fails.
async fn kubectl(s: &Settings, args: &[&str], file: &Path) {
    let status = tokio::process::Command::new(s.cluster_dir.join("bin/kubectl"))
        .env("KUBECONFIG", s.cluster_dir.join("kubeconfig"))
        .args(args)
        .arg(file)
        .stdout(Stdio::null())
        .status()
        .await;
    if !status.is_ok_and(|st| st.success()) {
        die!("kubectl {} {} failed", args.join(" "), file.display());
    }
}

/// Applies a controller's CRDs and waits until they are served.
async fn apply_crds(s: &Settings, crds: &Path) {
    if !crds.is_dir() {
        die!("no CRDs in {}", crds.display());
    }
    kubectl(
        s,
        &[
            "apply",
            "--server-side",
            "--field-manager=weir-install",
            "-f",
        ],
        crds,
    )
    .await;
    kubectl(
        s,
        &["wait", "--for=condition=Established", "--timeout=60s", "-f"],
        crds,
    )
    .await;
}

/// One line on where an object stands, for failure messages.
fn describe(object: &Value) -> String {
    let mut status = object["status"].to_string();
    status.truncate(300);
    format!(
        "{}: generation={} status={status}",
        object["metadata"]["name"].as_str().unwrap_or(""),
        object["metadata"]["generation"]
    )
}

/// Lists the namespace every 0.5 s until all N objects show converged; returns when the list
/// that saw it came back.
async fn wait_converged(
    client: &Client,
    tool: Tool,
    n: u64,
    controller: &Controller,
    start: f64,
    deadline: f64,
) -> f64 {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &tool.resource());
    let what = format!("{n} services converged ({})", tool.converged_meaning());
    let mut next_progress = now() + 10.0;
    loop {
        let polled = now();
        let items: Vec<Value> = crate::cluster::list_values(&api, NAMESPACE).await;
        let at = now();
        let done = items.iter().filter(|i| tool.converged(i)).count() as u64;
        if items.len() as u64 == n && done == n {
            return at;
        }
        controller.check_alive(&what);
        if at >= deadline {
            let waiting: Vec<String> = items
                .iter()
                .filter(|i| !tool.converged(i))
                .take(5)
                .map(describe)
                .collect();
            die!(
                "{}: only {done}/{n} converged after {:.0}s ({} listed); not yet, e.g.:\n  {}",
                tool.title(),
                at - start,
                items.len(),
                waiting.join("\n  ")
            );
        }
        if at >= next_progress {
            log!(
                "{}: {done}/{n} converged after {:.0}s",
                tool.title(),
                at - start
            );
            next_progress = at + 10.0;
        }
        let spent = Duration::from_secs_f64((now() - polled).max(0.0));
        tokio::time::sleep(POLL.saturating_sub(spent)).await;
    }
}

/// Changes the image of RELEASES services, one after another, and waits until each one's
/// first canary step is in effect: as many Ready pods of its new image as the step asks for.
async fn first_steps(
    client: &Client,
    tool: Tool,
    names: &[String],
    replicas: u64,
    controller: &Controller,
    deadline: f64,
) -> Vec<Value> {
    let watch = PodWatch::start(client, NAMESPACE).await;
    let want = tool.first_step_pods(replicas);
    let mut changed = Vec::new();
    for name in spread(names, RELEASES) {
        let image = format!("{IMAGE_REPO}:2-{name}");
        watch.expect(&image, want);
        let (resource, patch) = tool.image_change(&image);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        let at = now();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| die!("change the image of {name}: {e}"));
        changed.push((name, image, at));
    }
    let give_up = now() + deadline;
    let what = format!("the first canary step of {} releases", changed.len());
    loop {
        let pending: Vec<&str> = changed
            .iter()
            .filter(|(_, image, _)| watch.reached(image).is_none())
            .map(|(name, _, _)| name.as_str())
            .collect();
        if pending.is_empty() {
            break;
        }
        controller.check_alive(&what);
        if now() >= give_up {
            die!(
                "{}: {what} was not in effect after {deadline:.0}s for {}",
                tool.title(),
                pending.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    changed
        .into_iter()
        .map(|(name, image, at)| {
            let reached = watch.reached(&image).unwrap_or(at);
            json!({"name": name, "image": image, "changed": at, "in_effect": reached,
                "seconds": round(reached - at, 3)})
        })
        .collect()
}

/// The tables to paste into docs/comparison.md: one per N, the controllers side by side.
fn markdown(out: &Value) -> String {
    let results = out["results"].as_array().cloned().unwrap_or_default();
    let mut text = String::new();
    for size in out["sizes"].as_array().into_iter().flatten() {
        let row: Vec<&Value> = TOOLS
            .iter()
            .filter_map(|t| {
                results
                    .iter()
                    .find(|r| r["tool"] == t.key() && r["n"] == *size)
            })
            .collect();
        if row.is_empty() {
            continue;
        }
        text.push_str(&table(size.as_u64().unwrap_or_default(), &row, out));
        text.push('\n');
        text.push_str(&timeline_table(size.as_u64().unwrap_or_default(), &row));
        text.push('\n');
    }
    text.push_str(&format!(
        "Versions: {}; Kubernetes {}. Machine: {} cores, {} GiB ({}). Command: `{}`.\n",
        TOOLS
            .iter()
            .map(|t| format!(
                "{} {}",
                t.title(),
                out["versions"][t.key()].as_str().unwrap_or("?")
            ))
            .collect::<Vec<_>>()
            .join(", "),
        out["versions"]["kubernetes"].as_str().unwrap_or("?"),
        out["machine"]["cores"],
        out["machine"]["memory_gib"],
        out["machine"]["cpu"].as_str().unwrap_or("?"),
        out["command"].as_str().unwrap_or("?"),
    ));
    text
}

/// A row of the tables: its name, and how a controller's result shows in it.
type Figure = (String, fn(&Value) -> String);

/// Two figures of one tool in one cell: `first<between>second<end>`, one decimal each.
fn pair(r: &Value, first: &str, second: &str, between: &str, end: &str) -> String {
    format!(
        "{}{between}{}{end}",
        cell(r, first, 1, ""),
        cell(r, second, 1, "")
    )
}

fn cell(result: &Value, key: &str, digits: usize, unit: &str) -> String {
    fmt(num(result, key), digits, unit)
}

fn figures(out: &Value) -> Vec<Figure> {
    vec![
        ("apply → all converged".into(), |r| {
            cell(r, "converge_seconds", 1, " s")
        }),
        ("of which kubectl apply".into(), |r| {
            cell(r, "apply_seconds", 1, " s")
        }),
        ("controller RSS peak / settled".into(), |r| {
            pair(r, "peak_rss_mib", "settled_rss_mib", " / ", " MiB")
        }),
        ("API requests per service, until converged".into(), |r| {
            cell(r, "requests_per_service", 1, "")
        }),
        ("of which writes (of which Events)".into(), |r| {
            pair(
                r,
                "writes_per_service",
                "event_writes_per_service",
                " (",
                ")",
            )
        }),
        (
            format!(
                "idle writes per minute, over {} s (Leases apart)",
                out["idle_seconds"]
            ),
            |r| cell(r, "idle_writes_per_minute", 1, ""),
        ),
        ("idle requests per minute, reads included".into(), |r| {
            cell(r, "idle_requests_per_minute", 1, "")
        }),
        ("controller CPU s, until converged / idle".into(), |r| {
            pair(r, "cpu_seconds_converge", "cpu_seconds_idle", " / ", "")
        }),
        (
            format!(
                "image change → first step in effect (median / slowest of {})",
                out["releases"]
            ),
            |r| {
                pair(
                    r,
                    "median_first_step_seconds",
                    "max_first_step_seconds",
                    " / ",
                    " s",
                )
            },
        ),
    ]
}

/// One N: a row per figure, a column per controller.
fn table(n: u64, results: &[&Value], out: &Value) -> String {
    let rows = figures(out)
        .into_iter()
        .map(|(name, value)| (name, results.iter().map(|r| value(r)).collect()));
    side_by_side(&format!("N = {n}"), results, rows)
}

/// One N: where the first step's time went, medians in seconds after the image change.
fn timeline_table(n: u64, results: &[&Value]) -> String {
    let rows = timeline::MOMENTS.iter().map(|(key, name)| {
        let cells = results
            .iter()
            .map(|r| fmt(num(&r["first_step_timeline"], key), 3, ""))
            .collect();
        (name.to_string(), cells)
    });
    let corner = format!("N = {n}: first step, s after the image change (medians)");
    side_by_side(&corner, results, rows)
}

/// A Markdown table with a column per controller: `corner` above the row names.
fn side_by_side(
    corner: &str,
    results: &[&Value],
    rows: impl Iterator<Item = (String, Vec<String>)>,
) -> String {
    let titles: Vec<&str> = results
        .iter()
        .map(|r| r["title"].as_str().unwrap_or("?"))
        .collect();
    let mut lines = vec![
        format!("| {corner} | {} |", titles.join(" | ")),
        format!("|---|{}", "---|".repeat(results.len())),
    ];
    lines.extend(rows.map(|(name, cells)| format!("| {name} | {} |", cells.join(" | "))));
    lines.join("\n") + "\n"
}
