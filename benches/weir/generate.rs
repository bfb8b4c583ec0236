//! The objects core applies, as one multi-document YAML each side:
//!   floor  N Deployments and N Services, the work with no operator at all;
//!   weir   N Microservices asking Weir for the same.
//! Both sides use the same names, image, replica count and ports, so the only difference
//! between the phases is who turns the request into Deployments and Services.

pub const IMAGE: &str = "registry.example/bench:1";

/// `bench-0000`, `bench-0001`, ...
pub fn name(i: u64) -> String {
    format!("bench-{i:04}")
}

pub fn floor(n: u64, replicas: u64) -> String {
    let mut docs = Vec::new();
    for i in 0..n {
        let app = name(i);
        docs.push(format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels: {{app: {app}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
      - name: app
        image: {IMAGE}
        ports: [{{name: http, containerPort: 8080}}]
"
        ));
        docs.push(format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector: {{app: {app}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"
        ));
    }
    docs.join("---\n")
}

pub fn weir(n: u64, replicas: u64) -> String {
    let docs: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "apiVersion: weir.dev/v1alpha1
kind: Microservice
metadata:
  name: {}
spec:
  image: {IMAGE}
  replicas: {replicas}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
",
                name(i)
            )
        })
        .collect();
    docs.join("---\n")
}
