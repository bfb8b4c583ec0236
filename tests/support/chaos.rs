//! Fault injection for cluster tests: SIGKILL and restart the test cluster's kube-apiserver
//! or etcd with the arguments they run with, a Prometheus that goes down or hangs on
//! demand, a seeded random source, and the checks every chaos scenario ends with (no weight
//! on a slot whose ready pods cannot carry it, no child the final state does not expect,
//! writes only within the writer's lease).
//!
//! Restarting the API server stops the whole cluster for a moment: a test that restarts a
//! component holds it alone ([`super::exclusive`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::audit::AuditEvent;
use super::gateway::RouteRecorder;
use super::http::{FaultyListener, Server, proxy_to};
use super::release::{Harness, Member, PodCount, Recorder};
use weir::api::Slot;

pub use super::http::Mode;

/// The label on every child Weir owns.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=weir";

/// True when the long form runs (`WEIR_CHAOS=long`, as `make chaos` sets it).
pub fn long() -> bool {
    std::env::var("WEIR_CHAOS").is_ok_and(|v| v == "long")
}

/// `short` in the short form, `long` in the long form.
pub fn pick<T>(short: T, long_form: T) -> T {
    if long() { long_form } else { short }
}

/// A small seeded random source (SplitMix64): the seed is printed, and `WEIR_CHAOS_SEED`
/// replays a run.
pub struct Rng(u64);

impl Rng {
    pub fn new(what: &str) -> Rng {
        let seed = std::env::var("WEIR_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| Timestamp::now().as_nanosecond() as u64);
        eprintln!("{what}: WEIR_CHAOS_SEED={seed}");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// A duration in `low..=high` milliseconds.
    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.between(low, high))
    }
}

/// SIGKILLs a Harness's operator at random moments, starting a new one at once each time.
pub struct Kills {
    pub rng: Rng,
    /// How many kills so far.
    pub count: u32,
}

impl Kills {
    pub fn new(what: &str) -> Kills {
        Kills {
            rng: Rng::new(what),
            count: 0,
        }
    }

    /// Waits a random moment of up to `within_ms` (the moment of the fault, not a wait on
    /// the system), then kills the operator and starts a new one.
    pub async fn strike(&mut self, h: &mut Harness, within_ms: u64) {
        tokio::time::sleep(self.rng.millis(0, within_ms)).await;
        eprintln!("chaos: SIGKILL the operator (kill {})", self.count + 1);
        h.kill_and_restart_operator().await;
        self.count += 1;
    }
}

// ---------------------------------------------------------------------------------------
// Control-plane processes

/// The directory of the test cluster: `WEIR_CLUSTER_DIR`, else the directory of
/// `KUBECONFIG` (hack/cluster-up.sh writes the kubeconfig at the top of the cluster dir).
pub fn cluster_dir() -> PathBuf {
    let dir = match std::env::var_os("WEIR_CLUSTER_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG is set");
            Path::new(&kubeconfig)
                .parent()
                .expect("the kubeconfig has a directory")
                .to_path_buf()
        }
    };
    std::fs::canonicalize(&dir).unwrap_or_else(|e| panic!("cluster dir {}: {e}", dir.display()))
}

/// A component hack/cluster-up.sh started: its pid is in `<dir>/pids/<name>`, its output
/// in `<dir>/logs/<name>.log`.
pub struct Component {
    pub name: &'static str,
    pub dir: PathBuf,
}

/// How a process was started, read from /proc before it is killed.
#[derive(Clone, Debug)]
pub struct Launch {
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
}

impl Component {
    pub fn api_server() -> Component {
        Component {
            name: "kube-apiserver",
            dir: cluster_dir(),
        }
    }

    pub fn etcd() -> Component {
        Component {
            name: "etcd",
            dir: cluster_dir(),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pids").join(self.name)
    }

    /// The pid recorded for the component, checked to be this cluster's process: its
    /// program is `<name>` and its arguments name the cluster dir.
    pub fn pid(&self) -> u32 {
        let file = self.pid_file();
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (was the cluster started by hack/cluster-up.sh?)",
                file.display()
            )
        });
        let pid: u32 = text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", file.display()));
        // A process started a moment ago may not show its command line in /proc yet.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let launch = loop {
            match read_launch(pid) {
                Some(launch) => break launch,
                None if std::time::Instant::now() < give_up => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                None => panic!("{} (pid {pid}) is not running", self.name),
            }
        };
        let program = Path::new(&launch.argv[0]);
        let dir = self.dir.as_os_str().to_string_lossy().into_owned();
        assert!(
            program.file_name().is_some_and(|n| n == self.name)
                && launch
                    .argv
                    .iter()
                    .any(|a| a.to_string_lossy().contains(&dir)),
            "pid {pid} of {} is not {}'s process of {dir}: {:?}",
            file.display(),
            self.name,
            launch.argv
        );
        pid
    }

    /// SIGKILLs the component, waits `down_for`, starts it again with the same arguments,
    /// environment and directory, and waits until it serves again.
    pub async fn restart(&self, down_for: Duration) {
        let pid = self.pid();
        let launch = read_launch(pid).expect("the component runs");
        eprintln!("chaos: SIGKILL {} (pid {pid})", self.name);
        kill(pid, "-KILL").await;
        super::eventually(
            Duration::from_secs(30),
            &format!("{} (pid {pid}) to exit", self.name),
            || async { (!alive(pid)).then_some(()) },
        )
        .await;
        // The outage itself: how long the component stays away.
        tokio::time::sleep(down_for).await;
        let pid = self.start(&launch);
        eprintln!("chaos: started {} again (pid {pid})", self.name);
        self.wait_serving().await;
    }

    /// Starts the component as `launch` says, detached from the test (its own process
    /// group, output appended to its log), and records the new pid for cluster-down.sh.
    fn start(&self, launch: &Launch) -> u32 {
        let log_path = self.dir.join("logs").join(format!("{}.log", self.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
        let mut child = std::process::Command::new(&launch.argv[0])
            .args(&launch.argv[1..])
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        let pid = child.id();
        // The component outlives the test (cluster-down.sh stops it); should it end sooner,
        // this reaps it.
        std::thread::spawn(move || child.wait());
        let mut file = std::fs::File::create(self.pid_file()).expect("write the pid file");
        writeln!(file, "{pid}").expect("write the pid file");
        pid
    }

    /// Waits until the component answers: etcd's /health, the API server's /readyz.
    pub async fn wait_serving(&self) {
        let deadline = Duration::from_secs(120);
        if self.name == "etcd" {
            let launch = read_launch(self.pid()).expect("etcd runs");
            let address = flag(&launch, "--listen-client-urls")
                .and_then(|urls| urls.split(',').next().map(str::to_string))
                .map(|url| url.trim_start_matches("http://").to_string())
                .expect("etcd's --listen-client-urls");
            super::eventually(deadline, "etcd /health", || async {
                super::http::get(&address, "/health")
                    .await
                    .filter(|(status, body)| *status == 200 && body.contains("true"))
            })
            .await;
        }
        super::eventually(deadline, "the API server's /readyz", || async {
            api_server_ready().await.then_some(())
        })
        .await;
    }
}

/// True when the API server of `KUBECONFIG` answers /readyz with 200.
pub async fn api_server_ready() -> bool {
    let Ok(config) =
        kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await
    else {
        return false;
    };
    let Ok(client) = Client::try_from(config) else {
        return false;
    };
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .expect("a request");
    let answer = tokio::time::timeout(Duration::from_secs(5), client.request_text(request));
    matches!(answer.await, Ok(Ok(text)) if text.trim() == "ok")
}

fn flag(launch: &Launch, name: &str) -> Option<String> {
    let args: Vec<String> = launch
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.iter().enumerate().find_map(|(i, arg)| {
        if arg == name {
            args.get(i + 1).cloned()
        } else {
            arg.strip_prefix(&format!("{name}=")).map(str::to_string)
        }
    })
}

/// Arguments, environment and working directory of a running process.
pub fn read_launch(pid: u32) -> Option<Launch> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let split = |bytes: Vec<u8>| -> Vec<OsString> {
        bytes
            .split(|b| *b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| OsString::from_vec(part.to_vec()))
            .collect()
    };
    let argv = split(std::fs::read(proc.join("cmdline")).ok()?);
    if argv.is_empty() {
        return None; // a zombie
    }
    let env = split(std::fs::read(proc.join("environ")).ok()?)
        .into_iter()
        .filter_map(|pair| {
            let bytes = pair.into_vec();
            let at = bytes.iter().position(|b| *b == b'=')?;
            Some((
                OsString::from_vec(bytes[..at].to_vec()),
                OsString::from_vec(bytes[at + 1..].to_vec()),
            ))
        })
        .collect();
    let cwd = std::fs::read_link(proc.join("cwd")).ok()?;
    Some(Launch { argv, env, cwd })
}

/// True while `pid` runs (a zombie, dead but not yet reaped, does not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Sends `signal` (`-KILL`, `-STOP`, `-CONT`) to `pid`.
pub async fn kill(pid: u32, signal: &str) {
    let sent = tokio::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .await
        .expect("run kill");
    assert!(sent.success(), "kill {signal} {pid} failed");
}

// ---------------------------------------------------------------------------------------
// Prometheus that fails on demand

/// A proxy in front of a Prometheus server that goes down or hangs on demand ([`Mode`]);
/// open connections follow a mode change too. Stops when dropped.
pub struct FlakyPrometheus {
    pub addr: String,
    mode: watch::Sender<Mode>,
    _server: Server,
}

impl FlakyPrometheus {
    pub async fn start(target: &str, mode: Mode) -> FlakyPrometheus {
        let (sender, receiver) = watch::channel(mode);
        let listener = FaultyListener::bind(receiver).await;
        let server = Server::on(listener, proxy_to(target));
        FlakyPrometheus {
            addr: server.addr.clone(),
            mode: sender,
            _server: server,
        }
    }

    pub fn set(&self, mode: Mode) {
        eprintln!("chaos: Prometheus {mode:?}");
        self.mode.send_replace(mode);
    }
}

// ---------------------------------------------------------------------------------------
// What every scenario checks

/// The route and the pods of both slots of a Microservice, recorded from now on,
/// to check afterwards that no weight ever went to a slot whose ready pods could not
/// carry it.
pub struct TrafficWatch {
    pub route: RouteRecorder,
    pub blue: Recorder<PodCount>,
    pub green: Recorder<PodCount>,
    name: String,
}

impl TrafficWatch {
    pub async fn start(h: &Member) -> TrafficWatch {
        // The pods first: the route's first state then holds at the moment the pods'
        // first state was listed (see `ready_at`).
        let blue = h.record_pods(Slot::Blue).await;
        let green = h.record_pods(Slot::Green).await;
        TrafficWatch {
            route: h.record_route().await,
            blue,
            green,
            name: h.name.clone(),
        }
    }

    /// Ready pods of `slot` when the cluster was at `resource_version`. A route state
    /// older than the pods' first record (the route as first listed, unchanged since) is
    /// judged against that first record: a moment at which the route still carried it.
    fn ready_at(&self, slot: Slot, resource_version: u64) -> usize {
        let pods = self.pods(slot);
        pods.value_at(resource_version)
            .or_else(|| pods.values().first().copied())
            .map_or(0, |p| p.ready)
    }

    fn pods(&self, slot: Slot) -> &Recorder<PodCount> {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }

    /// Waits until the route sends everything to `slot` and the recorders saw that slot's
    /// `total` pods ready (so they caught up with the route), then checks every weight the
    /// route ever gave a slot against that slot's ready pods at the same resourceVersion:
    /// at least one, and enough for the share of `total`.
    pub async fn assert_weights_carried(&self, total: usize, active: Slot) {
        let backend = format!("{}-{}", self.name, active.as_str());
        self.route
            .wait_route(&format!("all traffic on {backend}"), |r| {
                r.weight(&backend) == 100
            })
            .await;
        self.pods(active)
            .wait_until(&format!("{total} ready pods in {backend}"), |p| {
                p.ready >= total
            })
            .await;
        let mut checked = 0;
        for entry in self.route.entries() {
            let Some(state) = entry.value else { continue };
            for slot in [Slot::Blue, Slot::Green] {
                let backend = format!("{}-{}", self.name, slot.as_str());
                let weight = state.weight(&backend) as usize;
                if weight == 0 {
                    continue;
                }
                let ready = self.ready_at(slot, entry.resource_version);
                assert!(
                    ready >= 1 && ready * 100 >= total * weight,
                    "weight {weight} went to {backend} (rv {}) with {ready} of {total} pods \
                     ready; route: {:#?}\npods: {:#?}",
                    entry.resource_version,
                    self.route.entries(),
                    self.pods(slot).entries()
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "the route never carried any weight");
    }
}

/// Weir's children in `ns`: kind/name → replicas (Deployments) or 0.
pub async fn children(client: &Client, ns: &str) -> BTreeMap<String, i32> {
    let params = ListParams::default().labels(MANAGED_BY);
    let mut found = BTreeMap::new();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for d in deployments.list(&params).await.expect("list Deployments") {
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        found.insert(format!("Deployment/{}", d.name_any()), replicas);
    }
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for s in services.list(&params).await.expect("list Services") {
        found.insert(format!("Service/{}", s.name_any()), 0);
    }
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
    for r in routes.list(&params).await.expect("list HTTPRoutes") {
        found.insert(format!("HTTPRoute/{}", r.name_any()), 0);
    }
    found
}

/// The children a Microservice `name` routed through the Gateway API should have once a
/// release is over and the old slot's scale-down delay has passed: the active slot at
/// `total`, the other slot only at 0 pods after an abort, the three Services, the route.
pub fn expected_children(
    name: &str,
    active: Slot,
    total: i32,
    aborted: bool,
) -> BTreeMap<String, i32> {
    let mut expected = BTreeMap::from([
        (format!("Deployment/{name}-{}", active.as_str()), total),
        (format!("Service/{name}"), 0),
        (format!("Service/{name}-blue"), 0),
        (format!("Service/{name}-green"), 0),
        (format!("HTTPRoute/{name}"), 0),
    ]);
    if aborted {
        let other = weir::release::other(active);
        expected.insert(format!("Deployment/{name}-{}", other.as_str()), 0);
    }
    expected
}

/// Waits until Weir's children in `ns` are exactly `expected` (the old slot goes only
/// after its scale-down delay); panics with the difference at the deadline.
pub async fn wait_children(client: &Client, ns: &str, expected: &BTreeMap<String, i32>) {
    let deadline = Duration::from_secs(60);
    let give_up = tokio::time::Instant::now() + deadline;
    // Three kinds of object: polled, like `eventually`, but keeping what was seen last.
    let last = loop {
        let seen = children(client, ns).await;
        if &seen == expected {
            return;
        }
        if tokio::time::Instant::now() >= give_up {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let missing: BTreeSet<_> = expected
        .iter()
        .filter(|(k, v)| last.get(*k) != Some(v))
        .collect();
    let unexpected: BTreeSet<_> = last
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(v))
        .collect();
    panic!(
        "Weir's children in {ns} are not what the final state expects within {deadline:?}: \
         missing or different {missing:?}, unexpected {unexpected:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Leases and the audit log

/// A Lease as a leadership record: who held it, when they took it and last renewed it.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaseView {
    pub holder: String,
    pub acquired: Option<Timestamp>,
    pub renewed: Option<Timestamp>,
    pub seconds: i64,
}

/// Records Lease `name` in `ns` from now on.
pub async fn record_lease(client: &Client, ns: &str, name: &str) -> Recorder<Option<LeaseView>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    Recorder::start(leases, config, &format!("Lease {name}"), |all| {
        all.first().and_then(|l| {
            let spec = l.spec.as_ref()?;
            Some(LeaseView {
                holder: spec.holder_identity.clone().unwrap_or_default(),
                acquired: spec.acquire_time.as_ref().map(|t| t.0),
                renewed: spec.renew_time.as_ref().map(|t| t.0),
                seconds: spec.lease_duration_seconds.unwrap_or_default().into(),
            })
        })
    })
    .await
}

/// Each holder's tenure as the Lease shows it: from its acquisition to its last renewal
/// plus the lease duration (when a follower may take over).
pub fn tenures(lease: &Recorder<Option<LeaseView>>) -> BTreeMap<String, (Timestamp, Timestamp)> {
    let mut tenures: BTreeMap<String, (Timestamp, Timestamp)> = BTreeMap::new();
    for view in lease.values().into_iter().flatten() {
        let (Some(acquired), Some(renewed)) = (view.acquired, view.renewed) else {
            continue;
        };
        if view.holder.is_empty() {
            continue;
        }
        let expires = renewed
            .checked_add(SignedDuration::from_secs(view.seconds))
            .expect("a lease expiry");
        let tenure = tenures
            .entry(view.holder.clone())
            .or_insert((acquired, expires));
        tenure.0 = tenure.0.min(acquired);
        tenure.1 = tenure.1.max(expires);
    }
    tenures
}

/// The time an audit event completed.
pub fn completed_at(event: &AuditEvent) -> Timestamp {
    event
        .stage_timestamp
        .parse()
        .unwrap_or_else(|e| panic!("audit stageTimestamp {:?}: {e}", event.stage_timestamp))
}

/// The identity in Weir's user agent `weir/<version> (<identity>)`.
pub fn identity_of(event: &AuditEvent) -> Option<&str> {
    let rest = event.user_agent.strip_prefix("weir/")?;
    let (_, identity) = rest.split_once(" (")?;
    identity.strip_suffix(')')
}
