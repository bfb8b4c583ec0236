//! Prints the Gateway API HTTPRoute CRD as JSON, generated from the `gateway-api` crate's
//! types exactly as the cluster tests install it (tests/support/gateway.rs): no download.
//! hack/bench.sh compiles this with rustc against the crates of the operator's release build.
use kube::CustomResourceExt;

fn main() {
    let mut crd = gateway_api::httproutes::HttpRoute::crd();
    // *.k8s.io groups need an approval annotation; "unapproved, ..." is the honest value.
    crd.metadata.annotations = Some(
        [(
            "api-approved.kubernetes.io".to_string(),
            "unapproved, generated from the gateway-api crate for benchmarks".to_string(),
        )]
        .into(),
    );
    println!(
        "{}",
        k8s_openapi::serde_json::to_string_pretty(&crd).expect("the CRD serializes")
    );
}
