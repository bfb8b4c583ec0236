//! What every part needs from the cluster: a client, the operator as a process of its own
//! (its log, its RSS sampled), namespaces made ready for pods and deleted until gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::settings::Settings;
use crate::support;

/// The settings and a client for the private control plane.
pub struct Bench {
    pub settings: Settings,
    pub client: Client,
}

impl Bench {
    pub async fn connect(settings: Settings) -> Bench {
        let client = support::client().await;
        Bench { settings, client }
    }

    /// Whether `part` is the last to run: its namespaces go with the cluster.
    pub fn is_last(&self, part: &str) -> bool {
        self.settings.parts.last().is_some_and(|p| p == part)
    }

    /// Ends a part: its operator stops (its log and RSS samples are complete), and its
    /// namespaces are deleted unless it is the last part (the cluster goes then anyway).
    pub async fn end_part(&self, part: &str, operator: Operator, namespaces: &[String]) {
        operator.stop().await;
        if !self.is_last(part) && !namespaces.is_empty() {
            delete_namespaces(&self.client, namespaces, self.settings.deadline()).await;
        }
    }
}

/// Seconds since the epoch: the unit of every time in the raw records and the JSON.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Seconds since the epoch of a `SystemTime`.
pub fn epoch(time: std::time::SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A field (KiB) of /proc/<pid>/status, e.g. VmRSS; None once the process is gone. The file
/// is read in one go: /proc renders it anew on each read.
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Whether the process runs: it exists and is not a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The operator of one part, started fresh so the part's memory and requests are its own;
/// the old one releases its Lease on SIGTERM, so the new one leads at once.
pub struct Operator {
    pub pid: u32,
    child: tokio::process::Child,
    sampler: tokio::task::JoinHandle<()>,
    pid_file: PathBuf,
    pub log: PathBuf,
}

impl Operator {
    /// Starts `weir run` with `extra` flags; its log goes to `<dir>/weir.log` and its RSS is
    /// sampled into `<dir>/rss.tsv`. Returns once its /readyz answers 200.
    pub async fn start(bench: &Bench, dir: &Path, extra: &[&str]) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| die!("no free port: {e}"));
        let log = dir.join("weir.log");
        let file =
            std::fs::File::create(&log).unwrap_or_else(|e| die!("create {}: {e}", log.display()));
        let stderr = file.try_clone().unwrap_or_else(|e| die!("{e}"));
        let operator = &bench.settings.operator;
        let child = tokio::process::Command::new(operator)
            .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| die!("cannot start {}: {e}", operator.display()));
        let pid = child.id().unwrap_or_default();
        // hack/cluster-down.sh stops it too, should the benchmark be killed.
        let pid_file = bench.settings.cluster_dir.join("pids/weir");
        let _ = std::fs::write(&pid_file, format!("{pid}\n"));
        let sampler = tokio::spawn(sample_rss(pid, dir.join("rss.tsv")));
        let operator = Operator {
            pid,
            child,
            sampler,
            pid_file,
            log,
        };
        operator.wait_ready(port).await;
        log!("operator ready (pid {pid}, metrics on 127.0.0.1:{port})");
        operator
    }

    async fn wait_ready(&self, port: u16) {
        let url = format!("http://127.0.0.1:{port}/readyz");
        wait_answering(&url, |waiting_for| self.check_alive(waiting_for)).await;
    }

    /// Fails the benchmark, with the end of the operator's log, when the operator is gone.
    pub fn check_alive(&self, waiting_for: &str) {
        if !alive(self.pid) {
            die!(
                "the operator (pid {}) exited while waiting for {waiting_for}; end of its log: {}",
                self.pid,
                log_tail(&self.log)
            );
        }
    }

    /// SIGTERM, up to 10 s to finish, then SIGKILL.
    pub async fn stop(self) {
        stop_process(self.child, self.pid, self.sampler, &self.pid_file).await;
    }
}

/// Stops a controller process the benchmark started: its RSS sampler first, then SIGTERM,
/// up to 10 s to finish, then SIGKILL; its pid file goes with it.
pub async fn stop_process(
    mut child: tokio::process::Child,
    pid: u32,
    sampler: tokio::task::JoinHandle<()>,
    pid_file: &Path,
) {
    sampler.abort();
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    let exited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    if exited.is_err() {
        let _ = child.kill().await;
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Appends "<epoch> <VmRSS KiB>" every 0.2 s while the process lives: the peak of a short
/// burst is what this is for, so it must sample faster than a reconcile wave lasts. A missed
/// sample is skipped, never the end of sampling.
pub async fn sample_rss(pid: u32, path: PathBuf) {
    let Ok(mut file) = std::fs::File::create(&path) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while alive(pid) {
        tick.tick().await;
        if let Some(rss) = proc_kib(pid, "VmRSS") {
            let _ = writeln!(file, "{:.6} {rss}", now());
        }
    }
}

/// A namespace ready for pods: its default ServiceAccount must exist first, or the ReplicaSet
/// controller's pod creations fail and back off, which would be timed as if it were work.
pub async fn fresh_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.to_string());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| die!("create namespace {name}: {e}"));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let give_up = now() + 60.0;
    while accounts.get_opt("default").await.ok().flatten().is_none() {
        if now() >= give_up {
            die!("ServiceAccount default in {name} did not happen within 60s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes namespaces and waits until they are gone, so one run's garbage collection does not
/// slow the next.
pub async fn delete_namespaces(client: &Client, names: &[String], deadline: f64) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let _ = namespaces.delete(name, &DeleteParams::background()).await;
    }
    let give_up = now() + deadline;
    for name in names {
        loop {
            match namespaces.get_opt(name).await {
                Ok(None) => break,
                Ok(Some(ns)) if now() >= give_up => die!(
                    "namespace {name} is still terminating after {deadline:.0}s: {:?}",
                    ns.status.and_then(|s| s.conditions)
                ),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// CPU seconds each process used between two readings of [`cpu_seconds`].
pub fn cpu_between(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(name, a)| {
            Some((name.clone(), crate::report::round(a - before.get(name)?, 2)))
        })
        .collect()
}

/// User+system CPU seconds used so far by each process recorded in the cluster's pids/:
/// where the two cores went during a phase (the API server, etcd, the controllers, the
/// operator).
pub fn cpu_seconds(pids_dir: &Path) -> std::collections::BTreeMap<String, f64> {
    let mut used = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(pids_dir) else {
        return used;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = std::fs::read_to_string(entry.path()).ok();
        if let Some(seconds) = pid.and_then(|p| process_cpu_seconds(p.trim().parse().ok()?)) {
            used.insert(name, seconds);
        }
    }
    used
}

/// utime + stime of /proc/<pid>/stat, in seconds (fields 14 and 15, counted after the
/// command name, which may hold spaces).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Every object `api` lists, as JSON; none (and a log line) when the list fails, so that a
/// poll simply tries again.
pub async fn list_values(
    api: &kube::Api<kube::api::DynamicObject>,
    namespace: &str,
) -> Vec<serde_json::Value> {
    match api.list(&kube::api::ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect(),
        Err(e) => {
            log!("listing in {namespace} failed, retrying: {e}");
            Vec::new()
        }
    }
}

/// Follows a watch of `api` until it ends, handing each event to `on_event` with the time
/// it was received; a failed watch (`what` names it in the log) is resumed.
pub async fn follow<K>(
    api: kube::Api<K>,
    what: &str,
    mut on_event: impl FnMut(kube::runtime::watcher::Event<K>, f64),
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => on_event(event, now()),
            Ok(None) => return,
            Err(e) => log!("the {what} watch failed, resuming: {e}"),
        }
    }
}

/// Waits up to 120 s for `url` to answer 2xx, asking `check_alive` (which fails the benchmark
/// when the process is gone) between tries.
pub async fn wait_answering(url: &str, check_alive: impl Fn(&str)) {
    let http = reqwest::Client::new();
    let give_up = now() + 120.0;
    let waiting_for = format!("{url} to answer 200");
    loop {
        let answer = http.get(url).timeout(Duration::from_secs(2)).send().await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return;
        }
        check_alive(&waiting_for);
        if now() >= give_up {
            die!("{waiting_for} did not happen within 120s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The last five lines of a process's log, for a failure message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// `kubectl apply --server-side` of `file` into `ns`, as the benchmark's own field manager;
/// fails the benchmark with kubectl's words when it fails.
pub async fn kubectl_apply(ns: &str, file: &Path) {
    let output = tokio::process::Command::new("kubectl")
        .args([
            "apply",
            "--server-side",
            "--field-manager=weir-bench",
            "-n",
            ns,
            "-f",
        ])
        .arg(file)
        .stdout(Stdio::null())
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => {}
        Ok(output) => die!(
            "kubectl apply -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(e) => die!("kubectl apply -f {}: {e}", file.display()),
    }
}
