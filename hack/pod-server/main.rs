//! The pod server: makes kwok's fake pods answer HTTP, so requests through the local Gateway
//! reach something that says which pod, slot and image served them.
//!
//! It watches Running pods and, for each with an IP in `--pod-cidr` (kwok's pod range, made
//! local by cluster-up), serves HTTP on that IP and every TCP container port. Each answer
//! names the pod in a JSON body `{"pod", "namespace", "slot", "image", "container"}` and in
//! the headers `x-pod`, `x-pod-namespace`, `x-slot`, `x-image` (cheap for a load generator).
//! The container's env sets its behaviour: `DEMO_ERROR_RATE` (0–1) is the share of answers
//! that are 500s, spread evenly (0.5 fails every second request), and `DEMO_LATENCY_MS` delays
//! every answer.
//!
//! A terminating pod behaves as an app with graceful shutdown under a kubelet: it keeps
//! serving through its preStop pause (a `sleep` preStop hook; other hooks take no time here),
//! and at SIGTERM, which is its deletion time plus that pause, it stops accepting connections
//! and finishes the requests under way. So a pod without a pause stops taking requests the
//! moment it is deleted, while gateways may still route to it: the window the pause closes.
//! Its addresses are released when the pod object is gone (kwok removes it at its
//! deletionTimestamp, the end of its grace period).
//!
//! Test tooling, not part of the operator image: `cargo build --example pod-server`, started
//! by hack/cluster-up.sh with the cluster's kubeconfig.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode, header};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Response headers carrying the same facts as the body.
const POD_HEADER: &str = "x-pod";
const NAMESPACE_HEADER: &str = "x-pod-namespace";
const SLOT_HEADER: &str = "x-slot";
const IMAGE_HEADER: &str = "x-image";
/// How long a closing listener may finish its requests before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How long a new listener retries its bind: a pod IP freed a moment ago can still be held
/// by the previous owner's closing listener.
const BIND_PATIENCE: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(about = "Serves HTTP on the IPs and ports of kwok's Running pods")]
struct Args {
    /// Pods with an IP in this IPv4 range are served (kwok's --cidr; local on this machine).
    #[arg(long)]
    pod_cidr: String,
}

/// An IPv4 range, `a.b.c.d/n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    network: u32,
    mask: u32,
}

impl Cidr {
    fn parse(text: &str) -> Result<Cidr, String> {
        let (ip, bits) = text
            .split_once('/')
            .ok_or_else(|| format!("{text}: not a CIDR (a.b.c.d/n)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|e| format!("{text}: {e}"))?;
        let bits: u32 = bits.parse().map_err(|e| format!("{text}: {e}"))?;
        if bits > 32 {
            return Err(format!("{text}: prefix longer than 32 bits"));
        }
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        Ok(Cidr {
            network: u32::from(ip) & mask,
            mask,
        })
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask == self.network
    }
}

/// What a container's answers say about who served them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Facts {
    pod: String,
    namespace: String,
    slot: Option<String>,
    image: String,
    container: String,
}

/// How a container answers, from its env (`value` only; `valueFrom` is not resolved).
#[derive(Clone, Debug, PartialEq)]
struct Behaviour {
    /// Share of answers that are 500s, 0 to 1.
    error_rate: f64,
    latency: Duration,
}

impl Behaviour {
    /// Unparsable values count as unset; the rate is clamped to 0–1.
    fn from_env(env: &[EnvVar]) -> Behaviour {
        let value = |name: &str| {
            env.iter()
                .rev()
                .find(|e| e.name == name)
                .and_then(|e| e.value.as_deref())
                .map(str::trim)
        };
        let error_rate = value("DEMO_ERROR_RATE")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| r.is_finite())
            .map_or(0.0, |r| r.clamp(0.0, 1.0));
        let latency = value("DEMO_LATENCY_MS")
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        Behaviour {
            error_rate,
            latency,
        }
    }
}

/// Spreads failures evenly: each answer owes `rate` of a failure and fails once a whole one
/// is owed, so a share of 0.5 fails exactly every second answer (no randomness for tests to
/// allow for).
#[derive(Clone, Debug, Default, PartialEq)]
struct ErrorBudget {
    owed: f64,
}

impl ErrorBudget {
    fn fails_next(&mut self, rate: f64) -> bool {
        self.owed += rate;
        // The tolerance absorbs float error: ten steps of 0.1 owe one whole failure.
        if self.owed >= 1.0 - 1e-9 {
            self.owed -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One address to serve: a pod IP and a container port, with what its answers say.
#[derive(Clone, Debug, PartialEq)]
struct Endpoint {
    addr: SocketAddr,
    facts: Facts,
    behaviour: Behaviour,
}

/// The addresses a pod should answer on right now: none unless it is Running with an IP in
/// `cidr`; otherwise one per TCP container port. A terminating pod still answers.
fn endpoints(pod: &Pod, cidr: &Cidr) -> Vec<Endpoint> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    if status.phase.as_deref() != Some("Running") {
        return Vec::new();
    }
    let Some(ip) = status
        .pod_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .filter(|ip| cidr.contains(*ip))
    else {
        return Vec::new();
    };
    let containers: &[Container] = pod.spec.as_ref().map_or(&[], |s| &s.containers);
    containers
        .iter()
        .flat_map(|container| {
            let facts = Facts {
                pod: pod.name_any(),
                namespace: pod.namespace().unwrap_or_default(),
                slot: pod.labels().get(weir::build::labels::SLOT_LABEL).cloned(),
                image: container.image.clone().unwrap_or_default(),
                container: container.name.clone(),
            };
            let behaviour = Behaviour::from_env(container.env.as_deref().unwrap_or_default());
            container
                .ports
                .iter()
                .flatten()
                .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
                .filter_map(|p| u16::try_from(p.container_port).ok())
                .map(move |port| Endpoint {
                    addr: SocketAddr::new(IpAddr::V4(ip), port),
                    facts: facts.clone(),
                    behaviour: behaviour.clone(),
                })
        })
        .collect()
}

/// When a terminating pod's containers get SIGTERM: its deletion time (the deletionTimestamp
/// less the grace period) plus its preStop pause. None while it is not terminating.
fn sigterm_at(pod: &Pod) -> Option<std::time::SystemTime> {
    let deadline = pod.metadata.deletion_timestamp.as_ref()?;
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(30);
    let pause = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref()?.sleep.as_ref())
        .map_or(0, |sleep| sleep.seconds);
    let deadline = std::time::SystemTime::from(deadline.0);
    let offset = grace.saturating_sub(pause).max(0).unsigned_abs();
    deadline.checked_sub(Duration::from_secs(offset))
}

/// The status, headers and body of one answer.
fn answer(facts: &Facts, fails: bool) -> Response<Body> {
    let status = if fails {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let body = serde_json::to_string(facts).expect("facts serialize");
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(POD_HEADER, &facts.pod)
        .header(NAMESPACE_HEADER, &facts.namespace)
        .header(IMAGE_HEADER, &facts.image);
    if let Some(slot) = &facts.slot {
        response = response.header(SLOT_HEADER, slot);
    }
    response
        .body(Body::from(body + "\n"))
        .unwrap_or_else(|_| Response::new(Body::from("invalid header value in pod facts\n")))
}

/// What a listener serves; updated in place when the pod changes (labels, say).
struct Serving {
    facts: Facts,
    behaviour: Behaviour,
    budget: ErrorBudget,
}

async fn handle(State(serving): State<Arc<Mutex<Serving>>>) -> Response<Body> {
    let (facts, latency, fails) = {
        let mut s = serving.lock().expect("serving lock");
        let rate = s.behaviour.error_rate;
        let fails = s.budget.fails_next(rate);
        (s.facts.clone(), s.behaviour.latency, fails)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    answer(&facts, fails)
}

/// One open address, owned by one pod (by uid: a new pod may get a freed IP).
struct Listener {
    uid: String,
    serving: Arc<Mutex<Serving>>,
    stop: Arc<watch::Sender<bool>>,
    /// Whether its SIGTERM is scheduled (the pod is terminating).
    terminating: bool,
    task: JoinHandle<()>,
}

impl Listener {
    fn start(uid: &str, endpoint: Endpoint) -> Listener {
        let serving = Arc::new(Mutex::new(Serving {
            facts: endpoint.facts,
            behaviour: endpoint.behaviour,
            budget: ErrorBudget::default(),
        }));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(endpoint.addr, serving.clone(), stopped));
        Listener {
            uid: uid.to_string(),
            serving,
            stop: Arc::new(stop),
            terminating: false,
            task,
        }
    }

    /// Stops accepting at `sigterm`, as the app would on SIGTERM.
    fn terminate_at(&mut self, sigterm: std::time::SystemTime) {
        if self.terminating {
            return;
        }
        self.terminating = true;
        let wait = sigterm
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = stop.send(true);
        });
    }

    /// Stops accepting at once; requests under way may finish within CLOSE_GRACE.
    fn close(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        tokio::spawn(async move {
            if tokio::time::timeout(CLOSE_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        });
    }
}

async fn serve(addr: SocketAddr, serving: Arc<Mutex<Serving>>, mut stopped: watch::Receiver<bool>) {
    let deadline = tokio::time::Instant::now() + BIND_PATIENCE;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                eprintln!("[pod-server] cannot listen on {addr}: {e}");
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let app = Router::new().fallback(handle).with_state(serving);
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("[pod-server] serving {addr} failed: {e}");
    }
}

/// Every open address, and which addresses each pod (by uid) holds.
#[derive(Default)]
struct Listeners {
    open: HashMap<SocketAddr, Listener>,
    by_pod: HashMap<String, Vec<SocketAddr>>,
}

impl Listeners {
    /// Brings the pod's addresses to what it should serve now.
    fn apply(&mut self, pod: &Pod, cidr: &Cidr) {
        let uid = pod.uid().unwrap_or_default();
        let wanted = endpoints(pod, cidr);
        let keep: HashSet<SocketAddr> = wanted.iter().map(|e| e.addr).collect();
        let held = self.by_pod.remove(&uid).unwrap_or_default();
        for addr in held.iter().filter(|a| !keep.contains(a)) {
            self.close(*addr);
        }
        if !wanted.is_empty() && held.is_empty() {
            let addrs: Vec<String> = wanted.iter().map(|e| e.addr.to_string()).collect();
            eprintln!(
                "[pod-server] serving {}/{} on {}",
                wanted[0].facts.namespace,
                wanted[0].facts.pod,
                addrs.join(" ")
            );
        }
        for endpoint in wanted {
            let addr = endpoint.addr;
            match self.open.get(&addr) {
                Some(listener) if listener.uid == uid => {
                    let mut serving = listener.serving.lock().expect("serving lock");
                    serving.facts = endpoint.facts;
                    serving.behaviour = endpoint.behaviour;
                }
                other => {
                    if other.is_some() {
                        self.close(addr);
                    }
                    self.open.insert(addr, Listener::start(&uid, endpoint));
                }
            }
        }
        if let Some(sigterm) = sigterm_at(pod) {
            for addr in &keep {
                if let Some(listener) = self.open.get_mut(addr) {
                    listener.terminate_at(sigterm);
                }
            }
        }
        if !keep.is_empty() {
            self.by_pod.insert(uid, keep.into_iter().collect());
        }
    }

    /// The pod is gone: its addresses close.
    fn remove(&mut self, uid: &str) {
        for addr in self.by_pod.remove(uid).unwrap_or_default() {
            self.close(addr);
        }
    }

    /// After a relist: pods that were not listed are gone.
    fn retain_pods(&mut self, listed: &HashSet<String>) {
        let gone: Vec<String> = self
            .by_pod
            .keys()
            .filter(|uid| !listed.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.remove(&uid);
        }
    }

    fn close(&mut self, addr: SocketAddr) {
        if let Some(listener) = self.open.remove(&addr) {
            if let Some(addrs) = self.by_pod.get_mut(&listener.uid) {
                addrs.retain(|a| *a != addr);
            }
            eprintln!(
                "[pod-server] closed {addr} ({})",
                listener.serving.lock().expect("serving lock").facts.pod
            );
            listener.close();
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let cidr = Cidr::parse(&args.pod_cidr).unwrap_or_else(|e| {
        eprintln!("[pod-server] --pod-cidr {e}");
        std::process::exit(2);
    });
    let client = Client::try_default().await.unwrap_or_else(|e| {
        eprintln!("[pod-server] no cluster client (is KUBECONFIG set?): {e}");
        std::process::exit(1);
    });
    // Only Running pods: one that leaves Running is reported deleted by the watch.
    let pods: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields("status.phase=Running");
    let mut events = std::pin::pin!(watcher(pods, config).default_backoff());
    let mut listeners = Listeners::default();
    let mut listed = HashSet::new();
    let mut ready = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod)) => listeners.apply(&pod, &cidr),
            Ok(watcher::Event::Delete(pod)) => listeners.remove(&pod.uid().unwrap_or_default()),
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                listed.insert(pod.uid().unwrap_or_default());
                listeners.apply(&pod, &cidr);
            }
            Ok(watcher::Event::InitDone) => {
                listeners.retain_pods(&listed);
                if !ready {
                    ready = true;
                    eprintln!(
                        "[pod-server] ready: serving Running pods in {}",
                        args.pod_cidr
                    );
                }
            }
            Err(e) => eprintln!("[pod-server] watch error (retrying): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
        pairs
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.to_string(),
                value: Some(value.to_string()),
                ..EnvVar::default()
            })
            .collect()
    }

    fn pod(phase: &str, ip: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("checkout-green-abc".into());
        pod.metadata.namespace = Some("shop".into());
        pod.metadata.uid = Some("uid-1".into());
        pod.metadata.labels = Some([("weir.dev/slot".to_string(), "green".to_string())].into());
        let port = |n: i32, protocol: Option<&str>| ContainerPort {
            container_port: n,
            protocol: protocol.map(str::to_string),
            ..ContainerPort::default()
        };
        pod.spec = Some(PodSpec {
            containers: vec![
                Container {
                    name: "app".into(),
                    image: Some("shop/checkout:2".into()),
                    ports: Some(vec![port(8080, None), port(9090, Some("TCP"))]),
                    env: Some(env(&[("DEMO_ERROR_RATE", "0.25")])),
                    ..Container::default()
                },
                Container {
                    name: "dns".into(),
                    image: Some("dns:1".into()),
                    ports: Some(vec![port(53, Some("UDP"))]),
                    ..Container::default()
                },
            ],
            ..PodSpec::default()
        });
        pod.status = Some(PodStatus {
            phase: Some(phase.into()),
            pod_ip: Some(ip.into()),
            ..PodStatus::default()
        });
        pod
    }

    fn cidr() -> Cidr {
        Cidr::parse("10.128.0.0/16").unwrap()
    }

    #[test]
    fn behaviour_comes_from_the_container_env() {
        let b = Behaviour::from_env(&env(&[
            ("DEMO_ERROR_RATE", "0.5"),
            ("DEMO_LATENCY_MS", "20"),
        ]));
        assert_eq!(b.error_rate, 0.5);
        assert_eq!(b.latency, Duration::from_millis(20));
        assert_eq!(
            Behaviour::from_env(&[]),
            Behaviour {
                error_rate: 0.0,
                latency: Duration::ZERO
            }
        );
    }

    #[test]
    fn behaviour_clamps_the_rate_and_ignores_what_does_not_parse() {
        let rate = |v| Behaviour::from_env(&env(&[("DEMO_ERROR_RATE", v)])).error_rate;
        assert_eq!(rate("3"), 1.0);
        assert_eq!(rate("-1"), 0.0);
        assert_eq!(rate("NaN"), 0.0);
        assert_eq!(rate("half"), 0.0);
        assert_eq!(rate(" 0.2 "), 0.2);
        let b = Behaviour::from_env(&env(&[("DEMO_LATENCY_MS", "-5")]));
        assert_eq!(b.latency, Duration::ZERO);
        // The last definition wins, as in a container.
        let b = Behaviour::from_env(&env(&[("DEMO_ERROR_RATE", "1"), ("DEMO_ERROR_RATE", "0")]));
        assert_eq!(b.error_rate, 0.0);
    }

    #[test]
    fn the_error_budget_fails_exactly_its_share() {
        for (rate, per_thousand) in [(0.0, 0), (0.1, 100), (0.25, 250), (0.5, 500), (1.0, 1000)] {
            let mut budget = ErrorBudget::default();
            let failed = (0..1000).filter(|_| budget.fails_next(rate)).count();
            assert_eq!(failed, per_thousand, "rate {rate}");
        }
        let mut budget = ErrorBudget::default();
        let pattern: Vec<bool> = (0..4).map(|_| budget.fails_next(0.5)).collect();
        assert_eq!(pattern, [false, true, false, true], "evenly spread");
    }

    #[test]
    fn a_running_pod_answers_on_each_tcp_port_with_its_container_facts() {
        let found = endpoints(&pod("Running", "10.128.0.7"), &cidr());
        let addrs: Vec<String> = found.iter().map(|e| e.addr.to_string()).collect();
        assert_eq!(addrs, ["10.128.0.7:8080", "10.128.0.7:9090"]);
        assert_eq!(
            found[0].facts,
            Facts {
                pod: "checkout-green-abc".into(),
                namespace: "shop".into(),
                slot: Some("green".into()),
                image: "shop/checkout:2".into(),
                container: "app".into(),
            }
        );
        assert_eq!(found[0].behaviour.error_rate, 0.25);
    }

    #[test]
    fn a_terminating_pod_still_answers() {
        let mut terminating = pod("Running", "10.128.0.7");
        terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert_eq!(endpoints(&terminating, &cidr()).len(), 2);
    }

    #[test]
    fn sigterm_comes_after_the_prestop_pause_counted_from_the_deletion() {
        let deadline = k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap();
        let mut terminating = pod("Running", "10.128.0.7");
        assert_eq!(sigterm_at(&terminating), None, "not terminating");
        terminating.metadata.deletion_timestamp = Some(Time(deadline));
        terminating.metadata.deletion_grace_period_seconds = Some(10);
        let at = |seconds: u64| Some(std::time::UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(
            sigterm_at(&terminating),
            at(999_990),
            "no pause: SIGTERM at deletion"
        );
        let container = &mut terminating.spec.as_mut().unwrap().containers[0];
        container.lifecycle =
            Some(serde_json::from_value(json!({"preStop": {"sleep": {"seconds": 5}}})).unwrap());
        assert_eq!(sigterm_at(&terminating), at(999_995), "after the 5 s pause");
    }

    #[test]
    fn pods_not_running_or_outside_the_range_do_not_answer() {
        assert!(endpoints(&pod("Pending", "10.128.0.7"), &cidr()).is_empty());
        assert!(endpoints(&pod("Succeeded", "10.128.0.7"), &cidr()).is_empty());
        assert!(endpoints(&pod("Running", "10.129.0.7"), &cidr()).is_empty());
        assert!(endpoints(&pod("Running", "10.96.0.1"), &cidr()).is_empty());
        assert!(endpoints(&pod("Running", "fd00::7"), &cidr()).is_empty());
        let mut no_ip = pod("Running", "");
        no_ip.status.as_mut().unwrap().pod_ip = None;
        assert!(endpoints(&no_ip, &cidr()).is_empty());
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c = Cidr::parse("10.128.0.0/12").unwrap();
        assert!(c.contains("10.128.0.1".parse().unwrap()));
        assert!(c.contains("10.143.255.255".parse().unwrap()));
        assert!(!c.contains("10.144.0.0".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.128.0.0").is_err());
        assert!(Cidr::parse("10.128.0.0/33").is_err());
        assert!(Cidr::parse("10.128.0/16").is_err());
    }

    #[tokio::test]
    async fn an_answer_names_the_pod_in_its_body_and_headers() {
        let facts = Facts {
            pod: "checkout-green-abc".into(),
            namespace: "shop".into(),
            slot: Some("green".into()),
            image: "shop/checkout:2".into(),
            container: "app".into(),
        };
        let response = answer(&facts, false);
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers[POD_HEADER], "checkout-green-abc");
        assert_eq!(headers[NAMESPACE_HEADER], "shop");
        assert_eq!(headers[SLOT_HEADER], "green");
        assert_eq!(headers[IMAGE_HEADER], "shop/checkout:2");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"pod": "checkout-green-abc", "namespace": "shop", "slot": "green",
                   "image": "shop/checkout:2", "container": "app"})
        );
        assert_eq!(
            answer(&facts, true).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_pod_without_a_slot_has_no_slot_header() {
        let facts = Facts {
            pod: "p".into(),
            namespace: "n".into(),
            slot: None,
            image: "i".into(),
            container: "c".into(),
        };
        assert!(!answer(&facts, false).headers().contains_key(SLOT_HEADER));
    }
}
