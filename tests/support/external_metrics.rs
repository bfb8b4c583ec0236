//! A Kubernetes external metrics adapter, as Datadog's, a cloud provider's or KEDA's would
//! be: an HTTPS server registered with the API server as APIService
//! `v1beta1.external.metrics.k8s.io`, reached by the aggregator at its endpoint's IP (one of
//! the pod range, which the data plane makes local). It serves one value per `slot` label.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::wait_for;

const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";

/// The adapter; its APIService is deleted when it is dropped.
pub struct Adapter {
    /// The label selectors it was asked for, in order.
    pub selectors: Arc<Mutex<Vec<String>>>,
}

impl Adapter {
    /// Serves `values` (by the `slot` label's value) on `ip` and registers the APIService,
    /// backed by Service `metrics-adapter` in `ns`; waits until the API server finds it
    /// available.
    pub async fn register(
        client: &kube::Client,
        ns: &str,
        ip: &str,
        values: BTreeMap<String, String>,
    ) -> Adapter {
        let selectors = Arc::new(Mutex::new(Vec::new()));
        let port = serve(ip, values, selectors.clone()).await;
        let params = PatchParams::apply("weir-tests").force();
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "metrics-adapter", "namespace": ns},
            "spec": {"ports": [{"port": 443, "targetPort": port}]}
        }))
        .unwrap();
        Api::<Service>::namespaced(client.clone(), ns)
            .patch("metrics-adapter", &params, &Patch::Apply(&service))
            .await
            .expect("the adapter's Service");
        let endpoints: Endpoints = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "metrics-adapter", "namespace": ns},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": port}]}]
        }))
        .unwrap();
        Api::<Endpoints>::namespaced(client.clone(), ns)
            .patch("metrics-adapter", &params, &Patch::Apply(&endpoints))
            .await
            .expect("the adapter's Endpoints");
        let registration: APIService = serde_json::from_value(json!({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1",
                     "service": {"namespace": ns, "name": "metrics-adapter", "port": 443},
                     "insecureSkipTLSVerify": true,
                     "groupPriorityMinimum": 100, "versionPriority": 100}
        }))
        .unwrap();
        let services: Api<APIService> = Api::all(client.clone());
        services
            .patch(APISERVICE, &params, &Patch::Apply(&registration))
            .await
            .expect("the APIService");
        let available = |service: Option<&APIService>| {
            let conditions = service.and_then(|s| s.status.as_ref()?.conditions.clone());
            conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        };
        let what = "the external metrics APIService to be available";
        wait_for(
            services,
            APISERVICE,
            super::release::DEADLINE,
            what,
            available,
        )
        .await;
        Adapter { selectors }
    }
}

impl Drop for Adapter {
    /// An APIService whose server is gone breaks discovery for every other client: removed
    /// even when the test fails.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .args([
                "delete",
                "apiservice",
                APISERVICE,
                "--ignore-not-found",
                "--wait=false",
            ])
            .output();
    }
}

/// Deletes the APIService (the end of a test that passed).
pub async fn unregister(client: &kube::Client) {
    let services: Api<APIService> = Api::all(client.clone());
    let _ = services.delete(APISERVICE, &DeleteParams::default()).await;
}

type Values = Arc<(BTreeMap<String, String>, Arc<Mutex<Vec<String>>>)>;

async fn serve(
    ip: &str,
    values: BTreeMap<String, String>,
    selectors: Arc<Mutex<Vec<String>>>,
) -> u16 {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/analysis/testdata");
    let certificates = CertificateDer::pem_file_iter(testdata.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(testdata.join("server.key")).expect("server.key");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .expect("the certificate and its key");
    let tcp = TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap_or_else(|e| panic!("listen on {ip}: {e}"));
    let port = tcp.local_addr().expect("an address").port();
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(config)),
    };
    let state: Values = Arc::new((values, selectors));
    let app = Router::new()
        .route("/apis", get(groups))
        .route("/apis/external.metrics.k8s.io/v1beta1", get(resources))
        .route(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}",
            get(metric),
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn groups() -> axum::Json<Value> {
    let version = json!({"groupVersion": GROUP_VERSION, "version": "v1beta1"});
    axum::Json(
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "external.metrics.k8s.io", "versions": [version], "preferredVersion": version}
        ]}),
    )
}

async fn resources() -> axum::Json<Value> {
    axum::Json(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [{"name": "*", "singularName": "", "namespaced": true,
                       "kind": "ExternalMetricValueList", "verbs": ["get"]}]}),
    )
}

async fn metric(
    State(state): State<Values>,
    Path((_namespace, metric)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> axum::Json<Value> {
    let selector = query.get("labelSelector").cloned().unwrap_or_default();
    state.1.lock().unwrap().push(selector.clone());
    let slot = selector
        .split(',')
        .find_map(|pair| pair.strip_prefix("slot="))
        .unwrap_or_default();
    let items: Vec<Value> = state
        .0
        .get(slot)
        .map(|value| {
            json!({"metricName": metric, "metricLabels": {"slot": slot},
                   "timestamp": "2026-01-01T00:00:00Z", "value": value})
        })
        .into_iter()
        .collect();
    axum::Json(
        json!({"kind": "ExternalMetricValueList", "apiVersion": GROUP_VERSION,
                      "metadata": {}, "items": items}),
    )
}

struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.tls.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
