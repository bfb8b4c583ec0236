//! What the builders send, pinned: for every example in `examples/` and the Microservices in
//! `golden/inputs.yaml`, each child as serialized JSON, compared with a file under
//! `golden/`. Server-side apply sends exactly this JSON, so a field that vanishes, a default
//! that appears or an absent field turned into `null` changes what the cluster runs; and a
//! changed revision starts a release of every Microservice when the operator is upgraded.
//!
//! After an intended change, `WEIR_UPDATE_GOLDEN=1 cargo test --lib build::golden` rewrites
//! the files; their diff is the change to review.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::traffic::{Split, route_json};
use super::*;
use crate::api::{CanaryStep, HeaderMatch, Microservice};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every input, with the name of its golden file.
fn inputs() -> Vec<(String, Microservice)> {
    let mut inputs = Vec::new();
    let examples = manifest_dir().join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&examples)
        .expect("examples/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy();
        // An example of several Microservices (a release group) names each file after its
        // member.
        let all = read_all(&path);
        let several = all.len() > 1;
        for ms in all {
            let name = match several {
                true => format!("example-{stem}-{}", ms.metadata.name.clone().unwrap()),
                false => format!("example-{stem}"),
            };
            inputs.push((name, ms));
        }
    }
    let own = manifest_dir().join("src/build/golden/inputs.yaml");
    let text = std::fs::read_to_string(&own).expect("golden/inputs.yaml is readable");
    for document in serde_yaml::Deserializer::from_str(&text) {
        let ms: Microservice =
            serde::Deserialize::deserialize(document).expect("a Microservice in inputs.yaml");
        inputs.push((ms.metadata.name.clone().unwrap(), ms));
    }
    assert!(inputs.len() >= 8, "the examples went missing: {inputs:?}");
    inputs
}

fn read_all(path: &Path) -> Vec<Microservice> {
    let text = std::fs::read_to_string(path).expect("an example is readable");
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// The header matches of the first `setHeaderRoute` step, if any.
fn header_route(ms: &Microservice) -> Vec<HeaderMatch> {
    let steps = ms.spec.rollout.as_ref().and_then(|r| r.canary.as_ref());
    steps
        .into_iter()
        .flat_map(|c| c.steps.iter())
        .find_map(|s: &CanaryStep| s.set_header_route.as_ref())
        .map(|h| h.matches.clone())
        .unwrap_or_default()
}

/// Everything the builders make from `ms`, as the JSON sent to the API server.
fn built(ms: &Microservice) -> Value {
    let defaults = Defaults::default();
    let name = ms.metadata.name.as_deref().unwrap_or_default();
    let total = effective_replicas(ms);
    let split = |weight, headers: Vec<HeaderMatch>, mirror_percent| Split {
        stable: Slot::Blue,
        candidate: Slot::Green,
        weight,
        header_route: headers,
        mirror_percent,
    };
    let routes = [
        split(0, vec![], 0),
        split(30, header_route(ms), 50),
        Split {
            stable: Slot::Green,
            candidate: Slot::Blue,
            ..split(100, vec![], 0)
        },
    ];
    json!({
        "revision": revision(ms, &defaults),
        "effectiveReplicas": total,
        "deployments": {
            "blue": slot_deployment(ms, Slot::Blue, total, &defaults),
            "green": slot_deployment(ms, Slot::Green, 0, &defaults),
        },
        "services": {
            "main": service(ms, name, None),
            "blue": service(ms, &format!("{name}-blue"), Some(Slot::Blue)),
            "preview": service(ms, &format!("{name}-preview"), Some(Slot::Green)),
        },
        "podDisruptionBudget": pod_disruption_budget(ms),
        "horizontalPodAutoscaler": horizontal_pod_autoscaler(ms),
        "routes": routes.iter().map(|s| route_json(ms, s)).collect::<Vec<_>>(),
    })
}

#[test]
fn the_builders_send_what_the_golden_files_hold() {
    let update = std::env::var_os("WEIR_UPDATE_GOLDEN").is_some();
    let mut changed = Vec::new();
    for (file, ms) in inputs() {
        let path = manifest_dir().join(format!("src/build/golden/{file}.json"));
        let got = built(&ms);
        if update {
            let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
            std::fs::write(&path, text).expect("golden file written");
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; WEIR_UPDATE_GOLDEN=1 writes it", path.display()));
        let want: Value = serde_json::from_str(&text).expect("a golden file is JSON");
        if got != want {
            changed.push(format!(
                "{file}: built\n{}\n",
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "the builders' output differs from src/build/golden/ (WEIR_UPDATE_GOLDEN=1 rewrites \
         the files after an intended change):\n{}",
        changed.join("\n")
    );
}
